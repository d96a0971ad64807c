// When to try again after the connection to a meeting is lost, and when not to: retries back off from
// 0.5 s, doubling to 4 s, each delay jittered by ±25 % (so a room full of clients does not hit a restarted
// server in one wave); after three minutes we give up. Failures no retry can fix stop at once.

export const RETRY_FIRST_MS = 500;
export const RETRY_MAX_MS = 4000;
export const GIVE_UP_MS = 3 * 60 * 1000;

// Socket close codes (docs/signaling.md) after which the same token cannot get back in.
const FINAL_CLOSE = {
  4000: { title: "You were removed from the meeting", reason: "A moderator removed you." },
  4001: { title: "You joined from another window",
    reason: "This meeting is open in another tab or window with the same invitation." },
  4401: { title: "Could not rejoin the meeting", reason: "Your invitation is no longer valid." },
  4410: { title: "Your account was deactivated", reason: "Your access to this organisation has ended." },
};

// Join error codes that mean the same: the token, the meeting or our place in it is gone.
const FINAL_ERRORS = {
  meeting_ended: { title: "The meeting has ended", reason: "The meeting ended while you were away." },
  removed: FINAL_CLOSE[4000],
  invalid_token: FINAL_CLOSE[4401],
  token_expired: { title: "Could not rejoin the meeting", reason: "Your invitation has expired." },
  wrong_room: FINAL_CLOSE[4401],
  out_of_scope: FINAL_CLOSE[4401],
  token_revoked: FINAL_CLOSE[4410],
};

/** {title, reason} when a lost connection or a failed rejoin must not be retried, else null.
 * `failure` is {closeCode?, closeReason?, code?, message?} (a socket close or a join error). */
export function finalFailure(failure) {
  const code = failure.code || failure.closeReason; // the server closes a refused join with its error code
  const byCode = code && FINAL_ERRORS[code];
  if (byCode) return { ...byCode, reason: failure.message || byCode.reason };
  if (failure.closeCode === 4403) return { title: "Could not rejoin the meeting", reason: failure.message || "" };
  return FINAL_CLOSE[failure.closeCode] || null;
}

/** The delay before retry number `tries` (0 first): 0.5, 1, 2, 4, 4… seconds, ±25 %. */
export function retryDelay(tries, random = Math.random) {
  const base = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** tries);
  return base * (0.75 + random() * 0.5);
}

/** Runs `attempt` (async, true when back in) with backoff until it succeeds, `stop()` is called, or
 * GIVE_UP_MS have passed since `start()` (then `giveUp()`). One attempt at a time. */
export class Reconnector {
  #attempt;
  #giveUp;
  #timer = null;
  #running = false;
  #tries = 0;

  constructor(attempt, giveUp) {
    this.#attempt = attempt;
    this.#giveUp = giveUp;
    this.active = false;
    this.since = 0;
  }

  /** Starts retrying; false when it already was. */
  start() {
    if (this.active) return false;
    this.active = true;
    this.since = Date.now();
    this.#tries = 0;
    this.#schedule();
    return true;
  }

  /** Tries at once (the network came back), unless an attempt is under way. */
  retryNow() {
    if (!this.active || this.#running) return;
    clearTimeout(this.#timer);
    this.#run();
  }

  stop() {
    this.active = false;
    clearTimeout(this.#timer);
  }

  #schedule() {
    if (Date.now() - this.since >= GIVE_UP_MS) {
      this.stop();
      this.#giveUp();
      return;
    }
    this.#timer = setTimeout(() => this.#run(), retryDelay(this.#tries));
  }

  async #run() {
    if (this.#running || !this.active) return;
    this.#running = true;
    this.#tries += 1;
    let back = false;
    try {
      back = await this.#attempt();
    } catch (err) {
      console.warn("reconnect attempt", err);
    } finally {
      this.#running = false;
    }
    if (!this.active) return; // stopped meanwhile (the call ended, or a final failure)
    if (back) this.active = false;
    else this.#schedule();
  }
}
