// A small, safe Markdown subset rendered to DOM nodes (never through innerHTML).
//
// Content bodies are Markdown. Supported: paragraphs, "#" headings (shifted
// below the item's own heading), "-"/"*"/"1." lists, **strong**, *emphasis*,
// `code` and [links](https://...). Anything else shows as plain text. Links
// keep only http(s) and mailto targets.

const INLINE = /(\*\*([^*]+)\*\*|\*([^*]+)\*|_([^_]+)_|`([^`]+)`|\[([^\]]+)\]\(([^)\s]+)\))/g;

/** Return the absolute URL if it is http(s) or mailto, else null. */
export function safeHref(raw, base = window.location.href) {
  try {
    const url = new URL(String(raw), base);
    return ["http:", "https:", "mailto:"].includes(url.protocol) ? url.href : null;
  } catch {
    return null;
  }
}

export function externalLink(href, text) {
  const link = document.createElement("a");
  link.href = href;
  link.textContent = text;
  if (!href.startsWith("mailto:")) {
    link.rel = "noopener noreferrer";
  }
  return link;
}

function appendInline(parent, text) {
  let last = 0;
  for (const match of text.matchAll(INLINE)) {
    parent.append(text.slice(last, match.index));
    const [whole, , strong, em, emUnderscore, code, linkText, linkTarget] = match;
    if (strong !== undefined) {
      const node = document.createElement("strong");
      node.textContent = strong;
      parent.append(node);
    } else if (em !== undefined || emUnderscore !== undefined) {
      const node = document.createElement("em");
      node.textContent = em ?? emUnderscore;
      parent.append(node);
    } else if (code !== undefined) {
      const node = document.createElement("code");
      node.textContent = code;
      parent.append(node);
    } else {
      const href = safeHref(linkTarget);
      parent.append(href ? externalLink(href, linkText) : whole);
    }
    last = match.index + whole.length;
  }
  parent.append(text.slice(last));
}

/**
 * Render Markdown `source` into a DocumentFragment.
 * `headingLevel` is the level of the item's own heading; "#" becomes one below it.
 */
export function renderMarkdown(source, headingLevel = 3) {
  const fragment = document.createDocumentFragment();
  const blocks = String(source).replace(/\r\n?/g, "\n").split(/\n\s*\n/);
  for (const block of blocks) {
    let lines = block.split("\n").filter((line) => line.trim() !== "");
    const heading = lines.length > 0 ? /^(#{1,6})\s+(.*)$/.exec(lines[0]) : null;
    if (heading) {
      const level = Math.min(6, headingLevel + heading[1].length);
      const node = document.createElement(`h${level}`);
      appendInline(node, heading[2]);
      fragment.append(node);
      lines = lines.slice(1);
    }
    if (lines.length === 0) {
      continue;
    }
    const bullet = /^\s*([-*+]|\d+[.)])\s+/;
    if (lines.every((line) => bullet.test(line))) {
      const ordered = /^\s*\d/.test(lines[0]);
      const list = document.createElement(ordered ? "ol" : "ul");
      for (const line of lines) {
        const item = document.createElement("li");
        appendInline(item, line.replace(bullet, ""));
        list.append(item);
      }
      fragment.append(list);
      continue;
    }
    const paragraph = document.createElement("p");
    appendInline(paragraph, lines.map((line) => line.trim()).join(" "));
    fragment.append(paragraph);
  }
  return fragment;
}
