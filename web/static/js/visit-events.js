// A visit's state as it changes: the server-sent events of
// GET /api/v1/visits/:id/events, one `state` event per change (the first at
// once). The patient's waiting room (join.js) and the call page's waiting
// room panel and patient view (call.js) follow it. The stream is passive:
// it does not count as activity for the session, and it never touches media.

/**
 * @typedef {object} VisitParticipant
 * @property {string} id
 * @property {string} role       'provider' | 'patient'
 * @property {string} state      'waiting' | 'admitted' | 'turned_away' | 'removed' | 'left'
 * @property {string} [waiting_at]
 * @property {string} [media_state]  as the media node reports it
 *
 * @typedef {object} VisitState
 * @property {string} status     'scheduled' | 'waiting' | 'in_progress' | 'completed' | 'cancelled' | 'no_show'
 * @property {string} [scheduled_start]
 * @property {string} [patient_name]  provider views only
 * @property {VisitParticipant[]} [participants]
 * @property {{state: string}} [me]  the page's own participant
 *
 * @typedef {object} Handlers
 * @property {(st: VisitState) => void} state  every state event
 * @property {(m: import('./call-chat.js').ChatMessage) => void} [chat]  every chat message, in order (their SSE id
 *   is the message's sequence number, so a reconnected stream resumes after the last one)
 * @property {() => void} [open]  the stream opened (the service reached its database)
 * @property {() => void} [gone]  the browser gave up on the stream (the session or the visit is gone, or
 *   the server refused it); not called after close()
 */

/** Statuses after which the visit changes no more. */
export const FINAL_STATUS = ['completed', 'cancelled', 'no_show'];

/** Follows one visit's state events until close(). While the stream drops, the browser reconnects by itself. */
export class VisitEvents {
  /** @param {string} visit @param {Handlers} on */
  constructor(visit, on) {
    /** @private */ this.source = new EventSource(`/api/v1/visits/${encodeURIComponent(visit)}/events`);
    const open = on.open;
    if (open) this.source.addEventListener('open', () => open());
    this.source.addEventListener('state', (ev) => {
      /** @type {VisitState} */
      let st;
      try {
        st = JSON.parse(/** @type {MessageEvent} */ (ev).data);
      } catch {
        return;
      }
      on.state(st);
    });
    const chat = on.chat;
    if (chat) {
      this.source.addEventListener('chat', (ev) => {
        try {
          chat(JSON.parse(/** @type {MessageEvent} */ (ev).data));
        } catch {
          // a malformed event is dropped
        }
      });
    }
    this.source.addEventListener('error', () => {
      // CONNECTING: the browser retries by itself. CLOSED: it gave up.
      if (this.closed && on.gone) on.gone();
    });
  }

  /** The stream is closed for good (by close() or by the browser giving up). */
  get closed() {
    return this.source.readyState === EventSource.CLOSED;
  }

  close() {
    this.source.close();
  }
}
