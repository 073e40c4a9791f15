// Where the page-level menu item appears (contextMenus documentUrlPatterns): read from rules.json
// ("pageHosts"), the one place hosts are listed, so the Python side and the popup agree with the menu.
import RULES from "./rules.json" with { type: "json" };

export const PAGE_MENU_PATTERNS = Object.freeze([...RULES.pageHosts.patterns]);
