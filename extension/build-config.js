// Written by scripts/build_extension.py for each target (dist/<target>/build-config.js);
// this copy holds the production values so the source folder and the Node tests work unbuilt.
export const BUILD = Object.freeze({ target: "prod", defaultBase: "https://papers.cool" });
