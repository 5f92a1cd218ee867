// Renders the content bundle ({type: [item, ...]}) as page sections.
//
// Content types and item fields are free-form, so rendering goes by field name.
// An item shows a title, a line of facts (role, organisation, dates, place), a
// summary, a Markdown body, links and lists, then any other plain values as a
// definition list. Everything is inserted as text: nothing from the API is
// parsed as HTML.

import { externalLink, renderMarkdown, safeHref } from "./markdown.js";

const SECTION_ORDER = ["about", "contact", "project", "experience", "education", "skill"];

const SECTION_TITLES = {
  about: "About",
  contact: "Contact",
  project: "Projects",
  experience: "Experience",
  education: "Education",
  skill: "Skills",
  "blog-post": "Blog posts",
  post: "Posts",
  certification: "Certifications",
  publication: "Publications",
  talk: "Talks",
  testimonial: "Testimonials",
  award: "Awards",
};

const TITLE_KEYS = ["title", "name", "heading", "label"];
const FACT_KEYS = [
  "headline",
  "role",
  "position",
  "company",
  "organization",
  "organisation",
  "employer",
  "institution",
  "school",
  "degree",
  "field",
  "level",
  "location",
];
const START_KEYS = ["startDate", "start", "from", "started"];
const END_KEYS = ["endDate", "end", "to", "ended"];
const PERIOD_KEYS = ["period", "dates", "date", "year", "years"];
const SUMMARY_KEYS = ["summary", "tagline", "description", "excerpt", "bio", "intro"];
const BODY_KEYS = ["body", "content", "markdown", "text", "details"];
const LINK_KEYS = [
  "url",
  "link",
  "website",
  "homepage",
  "demo",
  "repo",
  "repository",
  "source",
  "github",
  "gitlab",
  "linkedin",
  "mastodon",
  "twitter",
  "blog",
];
const LINK_LABELS = {
  url: "Website",
  link: "Website",
  github: "GitHub",
  gitlab: "GitLab",
  linkedin: "LinkedIn",
};
const EMAIL_KEYS = ["email", "mail"];
const UNLABELLED_LISTS = new Set(["items", "tags"]);
const MAX_TAG_LENGTH = 40;
const HIDDEN_KEYS = new Set(["order", "sortOrder", "featured", "draft", "published", "slug", "type", "image", "icon"]);

/** Turn a key into words: "blog-post" → "Blog post", "startDate" → "Start date". */
export function humanize(key) {
  const words = String(key)
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .replace(/[-_]+/g, " ")
    .trim()
    .toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function singular(type) {
  return type.endsWith("s") && !type.endsWith("ss") ? type.slice(0, -1) : type;
}

export function sectionTitle(type) {
  return SECTION_TITLES[type] ?? SECTION_TITLES[singular(type)] ?? humanize(type);
}

/** Sort known types first in a conventional order, the rest in bundle order. */
export function orderTypes(types) {
  const rank = (type) => {
    const index = SECTION_ORDER.indexOf(singular(type));
    return index === -1 ? SECTION_ORDER.length : index;
  };
  return types
    .map((type, position) => ({ type, position }))
    .sort((a, b) => rank(a.type) - rank(b.type) || a.position - b.position)
    .map(({ type }) => type);
}

function isPlain(value) {
  return typeof value === "string" || typeof value === "number";
}

function firstPlain(data, keys, used) {
  for (const key of keys) {
    const value = data[key];
    if (isPlain(value) && String(value).trim() !== "") {
      used.add(key);
      return String(value);
    }
  }
  return null;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

function listLabel(value) {
  if (isPlain(value)) {
    return String(value);
  }
  if (value && typeof value === "object") {
    const name = firstPlain(value, TITLE_KEYS, new Set());
    const level = firstPlain(value, ["level", "proficiency", "years"], new Set());
    if (name) {
      return level ? `${name} (${level})` : name;
    }
  }
  return null;
}

let listCount = 0;

/** Render short values as tags, and sentences (achievements, highlights) as a bullet list. */
function renderList(key, values, itemTitle) {
  const labels = values.map(listLabel).filter((label) => label);
  if (labels.length === 0) {
    return null;
  }
  const sentences = labels.some((label) => label.length > MAX_TAG_LENGTH);
  const wrapper = element("div", sentences ? "item__list" : "item__tags");
  const list = element("ul", sentences ? "" : "tags");
  for (const label of labels) {
    list.append(element("li", sentences ? "" : "tag", label));
  }
  if (UNLABELLED_LISTS.has(key)) {
    list.setAttribute("aria-label", itemTitle);
  } else {
    const heading = element("p", "item__list-label", humanize(key));
    listCount += 1;
    heading.id = `list-label-${listCount}`;
    list.setAttribute("aria-labelledby", heading.id);
    wrapper.append(heading);
  }
  wrapper.append(list);
  return wrapper;
}

function period(data, used) {
  const start = firstPlain(data, START_KEYS, used);
  const end = firstPlain(data, END_KEYS, used);
  if (start) {
    return `${start} – ${end ?? "present"}`;
  }
  return end ?? firstPlain(data, PERIOD_KEYS, used);
}

function renderLinks(data, used) {
  const links = [];
  for (const key of LINK_KEYS) {
    const href = typeof data[key] === "string" ? safeHref(data[key]) : null;
    if (href && !href.startsWith("mailto:")) {
      used.add(key);
      const label = LINK_LABELS[key] ?? humanize(key);
      links.push(externalLink(href, label));
    }
  }
  for (const key of EMAIL_KEYS) {
    const address = data[key];
    if (typeof address === "string" && /^[^\s@]+@[^\s@]+$/.test(address)) {
      used.add(key);
      links.push(externalLink(`mailto:${address}`, address));
    }
  }
  if (links.length === 0) {
    return null;
  }
  const list = element("ul", "item__links");
  for (const link of links) {
    const entry = element("li");
    entry.append(link);
    list.append(entry);
  }
  return list;
}

function renderFacts(data, used) {
  const list = element("dl", "item__facts");
  for (const [key, value] of Object.entries(data)) {
    if (used.has(key) || HIDDEN_KEYS.has(key) || key.startsWith("_")) {
      continue;
    }
    if (!isPlain(value) || String(value).trim() === "") {
      continue;
    }
    const href = typeof value === "string" && /^https?:\/\//.test(value) ? safeHref(value) : null;
    const definition = element("dd");
    definition.append(href ? externalLink(href, value) : String(value));
    list.append(element("dt", "", humanize(key)), definition);
  }
  return list.childElementCount > 0 ? list : null;
}

/**
 * Render one content item as an <article> with an <h3> heading. A heading that
 * only repeats the section's title ("Contact" in "Contact") is kept for the
 * outline but hidden visually.
 */
export function renderItem(item, sectionName = "") {
  const data = item.data && typeof item.data === "object" ? item.data : {};
  const used = new Set();
  const article = element("article", "item");
  article.id = `${item.type}-${item.slug}`;
  article.dataset.contentId = item.id ?? "";

  const title = firstPlain(data, TITLE_KEYS, used) ?? humanize(item.slug ?? item.type ?? "");
  const repeatsSection = title.toLowerCase() === sectionName.toLowerCase();
  article.append(element("h3", repeatsSection ? "item__title visually-hidden" : "item__title", title));

  const facts = [];
  for (const key of FACT_KEYS) {
    const value = firstPlain(data, [key], used);
    if (value) {
      facts.push(value);
    }
  }
  const when = period(data, used);
  if (when) {
    facts.push(when);
  }
  if (facts.length > 0) {
    article.append(element("p", "item__meta", facts.join(" · ")));
  }

  const summary = firstPlain(data, SUMMARY_KEYS, used);
  if (summary) {
    article.append(element("p", "item__summary", summary));
  }

  const bodyKey = BODY_KEYS.find((key) => typeof data[key] === "string" && data[key].trim() !== "");
  if (bodyKey) {
    used.add(bodyKey);
    const body = element("div", "item__body");
    body.append(renderMarkdown(data[bodyKey], 3));
    article.append(body);
  }

  for (const [key, value] of Object.entries(data)) {
    if (Array.isArray(value) && !used.has(key)) {
      used.add(key);
      const list = renderList(key, value, title);
      if (list) {
        article.append(list);
      }
    }
  }

  const links = renderLinks(data, used);
  if (links) {
    article.append(links);
  }
  const rest = renderFacts(data, used);
  if (rest) {
    article.append(rest);
  }
  return article;
}

/**
 * Render every type of the bundle as a <section>, replacing `container`'s
 * children, and fill `nav` with links to them. Returns the ordered types.
 */
export function renderBundle(bundle, container, nav) {
  const types = orderTypes(
    Object.keys(bundle).filter((type) => Array.isArray(bundle[type]) && bundle[type].length > 0),
  );
  const sections = [];
  const links = [];
  for (const type of types) {
    const id = `section-${type}`;
    const section = element("section", `section section--${singular(type)}`);
    section.id = id;
    section.setAttribute("aria-labelledby", `${id}-title`);
    const heading = element("h2", "section__title", sectionTitle(type));
    heading.id = `${id}-title`;
    const list = element("div", "section__items");
    for (const item of bundle[type]) {
      list.append(renderItem(item, sectionTitle(type)));
    }
    section.append(heading, list);
    sections.push(section);

    const entry = element("li");
    const link = element("a", "", sectionTitle(type));
    link.href = `#${id}`;
    entry.append(link);
    links.push(entry);
  }
  container.replaceChildren(...sections);
  if (nav) {
    const chatEntry = element("li");
    const chatLink = element("a", "", "Chat");
    chatLink.href = "#chat";
    chatEntry.append(chatLink);
    nav.replaceChildren(...links, chatEntry);
  }
  return types;
}

/** Return the owner's name: `name` of the about or contact item, else the about item's title. */
export function ownerName(bundle) {
  for (const type of ["about", "contact"]) {
    const item = (bundle[type] ?? bundle[`${type}s`] ?? [])[0];
    const name = item?.data?.name ?? (type === "about" ? item?.data?.title : undefined);
    if (typeof name === "string" && name.trim() !== "") {
      return name.trim();
    }
  }
  return null;
}
