/**
 * Canonical text forms of CQL `date` and `inet` values, converted to and from the numbers and bytes the driver uses.
 * Every `format*` output parses back to the same value, and every `parse*` accepts only what `format*` can emit
 * (dates) or any standard textual form (addresses), so decoded values can be compared with `===`.
 */

/** CQL `date` values are unsigned 32-bit day numbers centred on the Unix epoch, i.e. any signed 32-bit day. */
export const minEpochDay = -(2 ** 31)

/** The last day a CQL `date` can hold (year 5881580). */
export const maxEpochDay = 2 ** 31 - 1

/**
 * Days since 1970-01-01 of a proleptic Gregorian date.
 * Howard Hinnant's `days_from_civil`, exact for any year whose day number is a safe integer.
 */
const epochDayOf = (year: number, month: number, day: number): number => {
  const marchBasedYear = month <= 2 ? year - 1 : year
  const era = Math.floor(marchBasedYear / 400)
  const yearOfEra = marchBasedYear - era * 400
  const dayOfYear = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear
  return era * 146_097 + dayOfEra - 719_468
}

const padded = (value: number, width: number): string => String(value).padStart(width, "0")

/**
 * The ISO 8601 text of a day number, written like `java.time.LocalDate#toString` (and so like cqlsh):
 * `2024-02-29`, `-0044-03-15` for years before year 0, `+10000-01-01` for years after 9999.
 */
export const formatEpochDay = (epochDay: number): string => {
  const shifted = epochDay + 719_468
  const era = Math.floor(shifted / 146_097)
  const dayOfEra = shifted - era * 146_097
  const yearOfEra = Math.floor(
    (dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365
  )
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100))
  const marchBasedMonth = Math.floor((5 * dayOfYear + 2) / 153)
  const day = dayOfYear - Math.floor((153 * marchBasedMonth + 2) / 5) + 1
  const month = marchBasedMonth < 10 ? marchBasedMonth + 3 : marchBasedMonth - 9
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
  const yearText = year < 0 ? `-${padded(-year, 4)}` : year > 9999 ? `+${year}` : padded(year, 4)
  return `${yearText}-${padded(month, 2)}-${padded(day, 2)}`
}

// Years have at most 7 digits (CQL dates end in 5881580); an unbounded \d{4,} overflows the stack on megabytes.
const dateText = /^([+-]?\d{4,7})-(\d{2})-(\d{2})$/

/** The day number of a date written exactly as {@link formatEpochDay} writes it, if it is a CQL `date`. */
export const parseEpochDay = (text: string): number | undefined => {
  const match = dateText.exec(text)
  if (match === null) {
    return undefined
  }
  const [, year, month, day] = match.map(Number) as [number, number, number, number]
  const epochDay = epochDayOf(year, month, day)
  // Round-tripping rejects impossible dates (which roll over), non-canonical signs or padding, and
  // years so large that the arithmetic is no longer exact.
  return epochDay >= minEpochDay && epochDay <= maxEpochDay && formatEpochDay(epochDay) === text ? epochDay : undefined
}

const ipv4Text = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/
const hexGroup = /^[0-9a-f]{1,4}$/i

const parseIpv4 = (text: string): Array<number> | undefined => {
  const match = ipv4Text.exec(text)
  const octets = match?.slice(1).map(Number)
  return octets?.every((octet) => octet <= 255) ? octets : undefined
}

/** The 16-bit groups of one side of an IPv6 `::`, with an embedded IPv4 address allowed only at the very end. */
const parseIpv6Groups = (text: string, allowsIpv4Suffix: boolean): Array<number> | undefined => {
  if (text === "") {
    return []
  }
  const groups = text.split(":")
  const words: Array<number> = []
  for (const [index, group] of groups.entries()) {
    if (hexGroup.test(group)) {
      words.push(Number.parseInt(group, 16))
      continue
    }
    const ipv4 = allowsIpv4Suffix && index === groups.length - 1 ? parseIpv4(group) : undefined
    if (ipv4 === undefined) {
      return undefined
    }
    const [a, b, c, d] = ipv4 as [number, number, number, number]
    words.push((a << 8) | b, (c << 8) | d)
  }
  return words
}

const parseIpv6 = (text: string): Uint8Array | undefined => {
  const sides = text.split("::")
  if (sides.length > 2) {
    return undefined
  }
  const isCompressed = sides.length === 2
  const head = parseIpv6Groups(sides[0] ?? "", !isCompressed)
  const tail = isCompressed ? parseIpv6Groups(sides[1] ?? "", true) : []
  if (head === undefined || tail === undefined) {
    return undefined
  }
  const zeroWords = 8 - head.length - tail.length
  // `::` stands for at least one group of zeros.
  if (isCompressed ? zeroWords < 1 : zeroWords !== 0) {
    return undefined
  }
  const words = [...head, ...Array<number>(zeroWords).fill(0), ...tail]
  return Uint8Array.from(words.flatMap((word) => [word >> 8, word & 0xff]))
}

/**
 * The 4 (IPv4) or 16 (IPv6) bytes of an IP address in any standard text form: dotted decimal without leading
 * zeros, or any RFC 4291 IPv6 form (any case, `::`, an embedded dotted IPv4 tail). Zone ids (`%eth0`) are rejected:
 * a CQL `inet` cannot hold them.
 */
export const parseInetAddress = (text: string): Uint8Array | undefined => {
  if (text.includes(":")) {
    return parseIpv6(text)
  }
  const octets = parseIpv4(text)
  return octets === undefined ? undefined : Uint8Array.from(octets)
}

const isIpv4Mapped = (bytes: Uint8Array): boolean =>
  bytes.subarray(0, 10).every((byte) => byte === 0) && bytes[10] === 0xff && bytes[11] === 0xff

/**
 * The canonical text of a 4- or 16-byte address: dotted decimal for IPv4, and the RFC 5952 form for IPv6 (lower
 * case, no leading zeros, the longest run of two or more zero groups, the first one on a tie, written `::`, and
 * IPv4-mapped addresses as `::ffff:192.0.2.1`, as Node's sockets and cqlsh print them).
 */
export const formatInetAddress = (bytes: Uint8Array): string => {
  if (bytes.length === 4) {
    return bytes.join(".")
  }
  if (isIpv4Mapped(bytes)) {
    return `::ffff:${bytes.subarray(12).join(".")}`
  }
  const words = Array.from({ length: 8 }, (_, index) => ((bytes[2 * index] ?? 0) << 8) | (bytes[2 * index + 1] ?? 0))
  let runStart = -1
  let runLength = 0
  for (let start = 0; start < 8; start++) {
    let end = start
    while (end < 8 && words[end] === 0) {
      end++
    }
    if (end - start > runLength) {
      runStart = start
      runLength = end - start
    }
  }
  const hex = words.map((word) => word.toString(16))
  if (runLength < 2) {
    return hex.join(":")
  }
  return `${hex.slice(0, runStart).join(":")}::${hex.slice(runStart + runLength).join(":")}`
}
