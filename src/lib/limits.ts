/** The largest `limit` (items per answer) a client may ask for. Answers are cached per limit, so
 *  dropping a user means dropping each of 1..MAX_LIMIT. */
export const MAX_LIMIT = 100
