// The people panel: everyone in the room, their microphone state, and moderator actions.
import { t } from "/static/i18n.js";
import { icon } from "/static/icons.js";

function avatar(name) {
  const el = document.createElement("span");
  el.className = "person__avatar";
  el.textContent = (name.trim()[0] || "?").toUpperCase();
  let hash = 0;
  for (const ch of name) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  el.style.background = `hsl(${hash % 360} 45% 38%)`;
  return el;
}

function actionButton(iconName, label, onClick) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "icon-btn";
  button.setAttribute("aria-label", label);
  button.title = label;
  button.append(icon(iconName));
  button.onclick = onClick;
  return button;
}

export class PeoplePanel {
  /** actions: {mute(participantId), remove(participantId)} — only used when we moderate. */
  constructor(list, actions) {
    this.list = list;
    this.actions = actions;
  }

  /** people: [{id, name, micMuted, isSelf, away?}] */
  render(people, moderator) {
    this.list.replaceChildren(...people.map((person) => this.#row(person, moderator)));
  }

  #row(person, moderator) {
    const row = document.createElement("li");
    row.className = "person";
    row.dataset.participantId = person.id;
    const name = document.createElement("span");
    name.className = "person__name";
    name.textContent = person.name;
    if (person.isSelf) name.append(" ", Object.assign(document.createElement("small"), { textContent: t("people.you") }));
    if (person.away) name.append(" ", Object.assign(document.createElement("small"), { textContent: t("people.reconnecting") }));
    row.append(avatar(person.name), name, icon(person.micMuted ? "micOff" : "mic"));
    if (moderator && !person.isSelf && !person.away) {
      if (!person.micMuted) row.append(actionButton("micOff", t("people.mute", { name: person.name }), () => this.actions.mute(person.id)));
      row.append(actionButton("close", t("people.remove", { name: person.name }), () => this.actions.remove(person)));
    }
    return row;
  }
}
