import { scoreUser } from './scoring.ts'
import { toAnswerBody, type AnswerBody } from './answer-body.ts'
import { unpackHistory } from './history-wire.ts'
import type { GlobalStats, ScoreTask } from './types.ts'

// Stats are large and change every few minutes while tasks arrive thousands of times a second:
// parse once per version per thread, not once per task.
let cachedVersion: number | undefined
let cachedStats: GlobalStats | undefined

/** Scores one user: computation only, no connections. The answer comes back serialized (a few
 *  strings), which costs the main thread far less to receive than the object would, and leaves
 *  it no JSON work. */
export function scoreOne (task: ScoreTask): AnswerBody {
  if (cachedStats === undefined || cachedVersion !== task.statsVersion) {
    // Assigned only after a successful parse, so a bad payload leaves the previous cache intact.
    cachedStats = JSON.parse(Buffer.from(task.statsBuffer).toString('utf8')) as GlobalStats
    cachedVersion = task.statsVersion
  }
  return toAnswerBody(scoreUser({ ...task, ...unpackHistory(task.history) }, cachedStats))
}

/** piscina worker entry: a batch of users, so one pool task serves every miss of a moment. */
export default function score (tasks: ScoreTask[]): AnswerBody[] {
  return tasks.map(scoreOne)
}
