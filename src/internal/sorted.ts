/** The first index of the ascending `values` holding a value ≥ `bound` (`values.length` if none): a binary search. */
export const firstAtLeast = (values: ReadonlyArray<number>, bound: number): number => {
  let low = 0
  let high = values.length
  while (low < high) {
    const middle = (low + high) >>> 1
    if (values[middle]! < bound) low = middle + 1
    else high = middle
  }
  return low
}
