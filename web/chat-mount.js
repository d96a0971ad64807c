// The chat panel is another module (web/chat/). The meeting works without it: if it is missing or
// fails, the chat button simply stays hidden.

export async function mountChat(container, options) {
  try {
    const chat = await import("/static/chat/panel.js");
    if (typeof chat.mountChatPanel !== "function") return false;
    await chat.mountChatPanel(container, options);
    return true;
  } catch (err) {
    console.info("chat panel not available", err?.message || err);
    return false;
  }
}
