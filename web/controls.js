// The control bar: microphone, camera, screen, leave, and the moderator's "end meeting".
import { t } from "/static/i18n.js";
import { icon, setIcon } from "/static/icons.js";
import { canShareScreen } from "/static/local-media.js";

const $ = (id) => document.getElementById(id);

function renderToggle(button, on, { onIcon, offIcon, onLabel, offLabel }) {
  button.setAttribute("aria-pressed", String(on));
  button.setAttribute("aria-label", on ? onLabel : offLabel);
  button.title = on ? onLabel : offLabel;
  setIcon(button, on ? onIcon : offIcon);
}

/** Runs one action at a time per button. A click while the previous action is still negotiating
 * runs right after it (the button already shows the new state, so the click must count); more clicks
 * than one waiting are ignored. */
function guarded(button, action) {
  let queue = Promise.resolve();
  let pending = 0;
  button.onclick = () => {
    if (pending >= 2) return;
    pending += 1;
    button.dataset.busy = "1";
    queue = queue
      .then(action)
      .catch((err) => console.warn(err))
      .finally(() => {
        pending -= 1;
        if (!pending) delete button.dataset.busy;
      });
  };
}

export class Controls {
  constructor(call) {
    this.call = call;
    $("toggle-mic").classList.add("round-btn--device");
    $("toggle-cam").classList.add("round-btn--device");
    $("toggle-screen").classList.add("round-btn--share");
    $("toggle-screen").hidden = !canShareScreen();
    $("leave").append(icon("leave"));
    $("open-captions").append(icon("captions"));
    $("open-people").append(icon("people"));
    $("open-chat").append(icon("chat"));
    $("open-devices").append(icon("devices"));
    guarded($("toggle-mic"), () => call.setMicrophone(!call.micOn));
    guarded($("toggle-cam"), () => call.setCamera(!call.camOn));
    guarded($("toggle-screen"), () => (call.local.screen ? call.stopScreenShare() : call.startScreenShare()));
    $("leave").onclick = () => call.leave();
    $("end-room").onclick = () => {
      if (confirm(t("call.confirmEnd"))) call.endRoom();
    };
  }

  render(state) {
    renderToggle($("toggle-mic"), state.micOn,
      { onIcon: "mic", offIcon: "micOff", onLabel: t("media.micOff"), offLabel: t("media.micOn") });
    renderToggle($("toggle-cam"), state.camOn,
      { onIcon: "cam", offIcon: "camOff", onLabel: t("media.camOff"), offLabel: t("media.camOn") });
    renderToggle($("toggle-screen"), state.sharingScreen,
      { onIcon: "screen", offIcon: "screen", onLabel: t("media.stopPresenting"), offLabel: t("media.present") });
    $("end-room").hidden = !state.self?.moderator;
  }
}
