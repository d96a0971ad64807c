// Message text -> DOM. One pass over the text makes tokens (text, link, mention, code, strong, em,
// break); the DOM is built from them with textContent and properties only, never innerHTML, so no
// message can inject markup. A mention inside a link stays part of the link: the leftmost token wins,
// and a link starts before any "@" in it.

// Letters, marks, digits and "_": what the server's mention pattern (Python's \w) counts as a word.
const W = "[\\p{L}\\p{M}\\p{N}_]";
const LOGIN = `${W}(?:[${W.slice(1, -1)}.\\-]*${W})?`;

// Tried in this order where several start at one place: code is literal, links beat everything in them.
const PATTERNS = [
  ["code", "`([^`\\n]+)`"],
  ["link", "https?:\\/\\/[^\\s<>\"`]+"],
  ["strong", "\\*\\*([^*\\n]+)\\*\\*"],
  ["em", "(?<=^|[\\s(])\\*([^*\\n]+)\\*"],
  ["mention", `(?<![\\p{L}\\p{M}\\p{N}_@])@(${LOGIN})`],
  ["br", "\\n"],
];
const SCANNER = new RegExp(PATTERNS.map(([, p]) => `(${p})`).join("|"), "gu");
// Each alternative's own group comes first, then its inner groups: where each kind's groups start.
const GROUP_OF = (() => {
  const out = [];
  let index = 1;
  for (const [kind, p] of PATTERNS) {
    out.push([kind, index]);
    index += 1 + new RegExp(`${p}|`, "u").exec("").length - 1;
  }
  return out;
})();

// Punctuation that ends a sentence rather than a URL ("see https://x.example/a." links .../a).
function trimLink(url) {
  for (;;) {
    const last = url.at(-1);
    if (".,;:!?'\"".includes(last)) url = url.slice(0, -1);
    else if (last === ")" && url.split("(").length < url.split(")").length) url = url.slice(0, -1);
    else return url;
  }
}

export function tokenize(text) {
  const tokens = [];
  const pushText = (s) => {
    if (!s) return;
    const prev = tokens.at(-1);
    if (prev?.type === "text") prev.text += s;
    else tokens.push({ type: "text", text: s });
  };
  const source = String(text ?? "");
  SCANNER.lastIndex = 0;
  let at = 0;
  let match;
  while ((match = SCANNER.exec(source)) !== null) {
    const [kind, group] = GROUP_OF.find(([, g]) => match[g] !== undefined);
    let whole = match[group];
    pushText(source.slice(at, match.index));
    if (kind === "link") {
      whole = trimLink(whole);
      tokens.push({ type: "link", text: whole, href: whole });
    } else if (kind === "mention") tokens.push({ type: "mention", text: whole, login: match[group + 1] });
    else if (kind === "code") tokens.push({ type: "code", text: match[group + 1] });
    else if (kind === "strong" || kind === "em") tokens.push({ type: kind, children: tokenize(match[group + 1]) });
    else tokens.push({ type: "br" });
    at = match.index + whole.length;
    SCANNER.lastIndex = at;
  }
  pushText(source.slice(at));
  return tokens;
}

function node(token, doc) {
  switch (token.type) {
    case "text": return doc.createTextNode(token.text);
    case "br": return doc.createElement("br");
    case "code": {
      const e = doc.createElement("code");
      e.textContent = token.text;
      return e;
    }
    case "link": {
      const a = doc.createElement("a");
      a.href = token.href; // only http(s): the pattern admits nothing else
      a.textContent = token.text;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      return a;
    }
    case "mention": {
      const e = doc.createElement("span");
      e.className = "cv-mention";
      e.dataset.login = token.login;
      e.textContent = token.text;
      return e;
    }
    default: { // strong, em
      const e = doc.createElement(token.type);
      e.append(...token.children.map((t) => node(t, doc)));
      return e;
    }
  }
}

// The message text as a fragment of DOM nodes (Markdown subset: `code`, **strong**, *em*, links, @mentions).
export function renderText(text, doc = document) {
  const fragment = doc.createDocumentFragment();
  fragment.append(...tokenize(text).map((t) => node(t, doc)));
  return fragment;
}
