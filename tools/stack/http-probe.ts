/** True when `url` answers 200 within 2 s (the body is read and dropped). */
export async function answers200 (url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) })
    await res.arrayBuffer()
    return res.status === 200
  } catch {
    return false
  }
}
