// window.convene: a small read-only window into the page for tests and for debugging by hand.

export function installDebugHook(getCall) {
  window.convene = {
    /** The room as this page knows it (participants, our published tracks, captions on/off…). */
    state: () => getCall()?.snapshot() ?? { joined: false },
    /** Per received track what getStats says, plus the tiles on screen. */
    stats: async () => {
      const call = getCall();
      return {
        tracks: call?.subscriber && call.subscriber.pc.signalingState !== "closed" ? await call.subscriber.stats() : [],
        tiles: call ? call.view.grid.all().map((tile) => tile.describe()) : [],
      };
    },
    tiles: () => getCall()?.view.grid.all().map((tile) => tile.describe()) ?? [],
    captions: () => getCall()?.view.captions.describe() ?? [],
    /** The captions panel as the reader sees it: paragraphs, and whether it follows the talk. */
    captionParagraphs: () => getCall()?.view.captions.paragraphs() ?? { following: true, items: [] },
  };
}
