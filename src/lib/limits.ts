/** The largest `limit` (items per answer) a client may ask for. A user is scored once with this
 *  many items, and every smaller limit is cut from that one cached answer. */
export const MAX_LIMIT = 100
