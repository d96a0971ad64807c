// The side panel shows one of: people, captions, chat. Its buttons in the control bar toggle it.
import { icon } from "/static/icons.js";

export class SidePanel {
  #buttons = new Map(); // name → button

  constructor(aside) {
    this.aside = aside;
    this.current = null;
    for (const close of aside.querySelectorAll(".panel__close")) {
      close.append(icon("close"));
      close.onclick = () => this.close();
    }
  }

  addToggle(name, button) {
    this.#buttons.set(name, button);
    button.onclick = () => (this.current === name ? this.close() : this.open(name));
  }

  open(name) {
    this.current = name;
    for (const [panelName, button] of this.#buttons) {
      document.getElementById(`panel-${panelName}`).hidden = panelName !== name;
      button.setAttribute("aria-pressed", String(panelName === name));
    }
    this.aside.hidden = false;
  }

  close() {
    this.current = null;
    this.aside.hidden = true;
    for (const button of this.#buttons.values()) button.setAttribute("aria-pressed", "false");
  }
}
