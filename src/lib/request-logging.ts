import { LogController, type FastifyReply, type FastifyRequest } from 'fastify'

/** Fastify's per-request lines, moved down a level: two info lines per request cost more
 *  main-thread time than an LRU hit, and nginx writes the access log anyway. At the default level
 *  a request is logged when it fails (the error handler) or is slower than `slowMs`; at debug,
 *  every request is. */
export class RequestLogging extends LogController {
  constructor (private readonly slowMs: number) { super() }

  override incomingRequest (request: FastifyRequest): void {
    request.log.debug({ req: request }, 'incoming request')
  }

  override requestCompleted (error: Error | null, request: FastifyRequest, reply: FastifyReply): void {
    const ms = reply.elapsedTime
    if (error) reply.log.error({ res: reply, err: error, responseTime: ms }, 'request errored')
    else if (this.slowMs > 0 && ms >= this.slowMs) reply.log.warn({ req: request, res: reply, responseTime: ms }, 'slow request')
    else reply.log.debug({ res: reply, responseTime: ms }, 'request completed')
  }
}
