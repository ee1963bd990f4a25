/** Errors that carry what the client should see: a stable code, an HTTP status, for overload how
 *  long to wait and, where the route's error schema has room for them, extra fields of the body
 *  (`details`, e.g. the bad entries of a batch). The app's error handler sends all of it (see
 *  recErrorBody); anything else that reaches it is an unexpected 500. */
export class RecError extends Error {
  constructor (
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly retryAfterS?: number,
    readonly details?: Readonly<Record<string, unknown>>
  ) {
    super(message)
    this.name = 'RecError'
  }
}

export const badRequest = (message: string) => new RecError(400, 'REC_ERR_BAD_REQUEST', message)
export const unauthorized = () => new RecError(401, 'REC_ERR_UNAUTHORIZED', 'missing or invalid bearer token')
export const userNotFound = (id: number) => new RecError(404, 'REC_ERR_USER_NOT_FOUND', `user ${id} not found`)
export const overloaded = (what: string, retryAfterS = 1) => new RecError(503, 'REC_ERR_OVERLOADED', `${what} is overloaded, retry later`, retryAfterS)
export const unavailable = (what: string, retryAfterS = 2) => new RecError(503, 'REC_ERR_UNAVAILABLE', `${what} is unavailable, retry later`, retryAfterS)

export function errorBody (statusCode: number, code: string, message: string, requestId?: string) {
  return { statusCode, code, error: httpReason(statusCode), message, ...(requestId ? { request_id: requestId } : {}) }
}

/** The body a RecError is answered with: the common error fields, then its details (which cannot
 *  replace a common field). */
export function recErrorBody (err: RecError, requestId?: string): Record<string, unknown> {
  const body: Record<string, unknown> = errorBody(err.statusCode, err.code, err.message, requestId)
  for (const [k, v] of Object.entries(err.details ?? {})) if (!COMMON_FIELDS.has(k)) body[k] = v
  return body
}
const COMMON_FIELDS = new Set(['statusCode', 'code', 'error', 'message', 'request_id'])

function httpReason (status: number): string {
  switch (status) {
    case 400: return 'Bad Request'
    case 401: return 'Unauthorized'
    case 404: return 'Not Found'
    case 413: return 'Payload Too Large'
    case 429: return 'Too Many Requests'
    case 503: return 'Service Unavailable'
    default: return status >= 500 ? 'Internal Server Error' : 'Error'
  }
}
