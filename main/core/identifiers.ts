// MACs and SMBIOS UUIDs arrive in many spellings (spreadsheets, firmware, the DHCP codec);
// the store keeps one canonical form of each so lookups match.

/** Accepts aa:bb:cc:dd:ee:ff, AA-BB-CC-DD-EE-FF, aabb.ccdd.eeff and aabbccddeeff. */
const CANONICAL_MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

export function normalizeMac(value: string): string | undefined {
  // Already canonical (every MAC the DHCP service reports): called several times per event.
  if (CANONICAL_MAC.test(value)) return value;
  const hex = value.trim().toLowerCase();
  let digits: string;
  if (/^[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}$/.test(hex)) digits = hex.replace(/[:-]/g, '');
  else if (/^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$/.test(hex)) digits = hex.replace(/\./g, '');
  else if (/^[0-9a-f]{12}$/.test(hex)) digits = hex;
  else return undefined;
  return digits.match(/../g)!.join(':');
}

/** Accepts 8-4-4-4-12 with or without braces/dashes, any case; returns lower-case 8-4-4-4-12. */
export function normalizeUuid(value: string): string | undefined {
  const hex = value
    .trim()
    .toLowerCase()
    .replace(/^\{(.*)\}$/, '$1');
  if (!/^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/.test(hex)) return undefined;
  const d = hex.replace(/-/g, '');
  return `${d.slice(0, 8)}-${d.slice(8, 12)}-${d.slice(12, 16)}-${d.slice(16, 20)}-${d.slice(20)}`;
}

/**
 * UUIDs that identify no one: QEMU sends all zeros unless given one, some boards all ones,
 * and many cheap boards ship the placeholder 03000200-0400-0500-0006-000700080009.
 * Such a UUID is stored for display but never used to recognise a machine.
 */
export function isPlaceholderUuid(uuid: string): boolean {
  const d = uuid.replace(/-/g, '');
  return /^0+$/.test(d) || /^f+$/.test(d) || d === '03000200040005000006000700080009';
}
