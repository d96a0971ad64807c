// Building DOM nodes in the pages' scripts (home, admin, usage dashboard, meeting record): one helper, so every
// page sets text through textContent (never innerHTML) the same way.

/**
 * `el("a", { className: "x", href, textContent: t("…") }, child…)`: a new element. A key the element has as a
 * property is set as that property (`class` is `className`); any other (`aria-label`, `data-…`, and `list`,
 * which is a read-only property) becomes an attribute. Null and undefined children are left out.
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key in node && key !== "list") node[key] = value;
    else node.setAttribute(key, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}
