// The words users read for a resolution: kinds and venues by their names, ids as the venue prints them
// (never the internal kind "venue" or a key like "B18WgG-CZ@OpenReview"), lists joined as the language
// joins them. Pure ES module: the message lookup is passed in (chrome.i18n in the extension, a table in tests).
import RULES from "./rules.json" with { type: "json" };

const VENUES = RULES.venues.map((venue) => ({ name: venue.name, pattern: new RegExp(venue.display.pattern), display: venue.display }));

function fill(template, match) {
  return template.replace(/\{(\d+)\}/g, (_, n) => match[Number(n)] ?? "");
}

/** A venue key split for people: "12@2023@IJCAI" -> {venue: "IJCAI 2023", paper: "#12", name: "IJCAI", match}. */
export function venueParts(id) {
  for (const { name, pattern, display } of VENUES) {
    const match = pattern.exec(id);
    if (!match) continue;
    let paper = fill(display.paper, match);
    if (display.spaces) paper = paper.replaceAll(display.spaces, " ");
    return { venue: fill(display.label, match), paper, name, match, display };
  }
  // A form the rules do not know (a newer server): still no raw key with "@" in front of people.
  const parts = String(id).split("@");
  return { venue: parts.length > 1 ? parts[parts.length - 1] : "", paper: parts.slice(0, -1).join(" ") || String(id), name: null, match: null, display: null };
}

/** "a, b or c" (en) / "a、b或c" (zh_CN): `t` is the message lookup; "and" lists use listPairAnd. */
export function joinList(items, t, { last = "listPairOr" } = {}) {
  const list = items.filter((item) => item !== "" && item != null).map(String);
  if (list.length <= 1) return list[0] ?? "";
  const head = list.slice(0, -1).reduce((acc, item) => t("listMore", [acc, item]));
  return t(last, [head, list[list.length - 1]]);
}

/** Join without a conjunction: "a, b, c" / "a、b、c" (ids of one page). */
export function joinIds(items, t) {
  return items.map(String).reduce((acc, item) => t("listMore", [acc, item]));
}

function searchWords(target) {
  try {
    return new URL(target).searchParams.get("query") ?? "";
  } catch {
    return "";
  }
}

/**
 * {kind, text} for a resolution: kind is what it is ("arXiv", "OpenReview", "IJCAI 2023", "arXiv listing",
 * "Search"), text the ids or words in the venue's own spelling.
 */
export function describe(resolution, t) {
  if (!resolution) return { kind: "", text: "" };
  const { kind, ids, target } = resolution;
  if (kind === "arxiv") return { kind: t("kind_arxiv"), text: joinIds(ids, t) };
  if (kind === "category") return { kind: t("kind_category"), text: ids[0] ?? "" };
  if (kind === "search") return { kind: t("kind_search"), text: searchWords(target) };
  if (kind === "coolpapers") {
    let path = target;
    try {
      path = decodeURIComponent(new URL(target).pathname);
    } catch {
      // keep the target as it is
    }
    return { kind: t("kind_coolpapers"), text: path };
  }
  const parts = ids.map(venueParts);
  const venues = [...new Set(parts.map((p) => p.venue))];
  if (venues.length === 1 && venues[0]) return { kind: venues[0], text: joinIds(parts.map((p) => p.paper), t) };
  return { kind: t("kind_venue"), text: joinIds(parts.map((p) => (p.venue ? `${p.venue} ${p.paper}` : p.paper)), t) };
}
