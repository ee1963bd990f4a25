import type { PackedHistory, PurchaseEvent, SearchEvent } from './types.ts'

/** A user's history as typed arrays for the trip to a worker thread: copying a typed array is
 *  one memcpy, copying an array of event objects is a structured clone per object and property,
 *  paid on the main thread for every miss. Category names are sent once per user. */
export function packHistory (searches: SearchEvent[], purchases: PurchaseEvent[]): PackedHistory {
  const categories: string[] = []
  const index = new Map<string, number>()
  const id = (name: string): number => {
    let i = index.get(name)
    if (i === undefined) {
      i = categories.push(name) - 1
      index.set(name, i)
    }
    return i
  }
  const searchCat = new Uint32Array(searches.length)
  const searchAt = new Float64Array(searches.length)
  searches.forEach((s, i) => { searchCat[i] = id(s.category); searchAt[i] = s.at })
  const purchaseCat = new Uint32Array(purchases.length)
  const purchaseAt = new Float64Array(purchases.length)
  const purchaseItem = new Float64Array(purchases.length)
  purchases.forEach((p, i) => { purchaseCat[i] = id(p.category); purchaseAt[i] = p.at; purchaseItem[i] = p.itemId })
  return { categories, searchCat, searchAt, purchaseCat, purchaseAt, purchaseItem }
}

export function unpackHistory (h: PackedHistory): { searches: SearchEvent[], purchases: PurchaseEvent[] } {
  const name = (i: number | undefined): string => h.categories[i ?? -1] ?? ''
  const searches: SearchEvent[] = Array.from(h.searchAt, (at, i) => ({ category: name(h.searchCat[i]), at }))
  const purchases: PurchaseEvent[] = Array.from(h.purchaseAt, (at, i) => ({ itemId: h.purchaseItem[i] ?? 0, category: name(h.purchaseCat[i]), at }))
  return { searches, purchases }
}
