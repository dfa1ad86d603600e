// Machines as CSV (mac, uuid, name, group, entry), so a technician can bring a classroom list
// from a spreadsheet, and the whole history of one machine as JSON.
//
// CSV follows RFC 4180 (quoted fields, "" inside quotes, CRLF or LF), plus what spreadsheets
// actually write: a UTF-8 BOM, and ';' as the separator in locales where ',' is the decimal mark.
import { normalizeMac, normalizeUuid } from '../core/index.js';
import type { Machine } from './machines.js';
import type { Store } from './open-store.js';
import { machineFieldName, machineFields } from './machine-fields.js';

export const CSV_COLUMNS = ['mac', 'uuid', 'name', 'group', 'entry'] as const;
type CsvColumn = (typeof CSV_COLUMNS)[number];

const COLUMN_ALIASES: Record<string, CsvColumn> = {
  mac: 'mac',
  macs: 'mac',
  'mac address': 'mac',
  'mac addresses': 'mac',
  uuid: 'uuid',
  'smbios uuid': 'uuid',
  name: 'name',
  hostname: 'name',
  group: 'group',
  room: 'group',
  bench: 'group',
  entry: 'entry',
  'boot entry': 'entry',
};

export interface CsvRowProblem {
  /** 1-based line in the file where the row starts. */
  line: number;
  problem: string;
  fix: string;
}

export interface CsvImportResult {
  created: number;
  updated: number;
  /** Rows not imported, each with what is wrong and how to fix it. */
  problems: CsvRowProblem[];
}

interface CsvRecord {
  line: number;
  fields: string[];
}

/** Splits CSV text into records; an unterminated quote is reported and ends the parse. */
export function parseCsv(text: string, separator?: ',' | ';'): { records: CsvRecord[]; problems: CsvRowProblem[] } {
  const source = text.replace(/^\uFEFF/, '');
  const firstLine = source.split(/\r?\n/, 1)[0] ?? '';
  const sep = separator ?? (firstLine.includes(';') && !firstLine.includes(',') ? ';' : ',');
  const records: CsvRecord[] = [];
  const problems: CsvRowProblem[] = [];
  let line = 1;
  let i = 0;
  while (i < source.length) {
    const startLine = line;
    const fields: string[] = [];
    let field = '';
    let quotedOpenedAt = 0;
    for (;;) {
      const ch = source[i];
      if (ch === undefined) {
        fields.push(field);
        break;
      }
      if (quotedOpenedAt) {
        if (ch === '"' && source[i + 1] === '"') {
          field += '"';
          i += 2;
        } else if (ch === '"') {
          quotedOpenedAt = 0;
          i++;
        } else {
          if (ch === '\n') line++;
          field += ch;
          i++;
        }
        continue;
      }
      if (ch === '"' && field.trim() === '') {
        field = '';
        quotedOpenedAt = line;
        i++;
      } else if (ch === sep) {
        fields.push(field);
        field = '';
        i++;
      } else if (ch === '\r' || ch === '\n') {
        fields.push(field);
        i += ch === '\r' && source[i + 1] === '\n' ? 2 : 1;
        line++;
        break;
      } else {
        field += ch;
        i++;
      }
    }
    if (quotedOpenedAt) {
      problems.push({ line: startLine, problem: 'a quoted field is never closed', fix: 'add the closing " (a quote inside a quoted field is written "")' });
      break;
    }
    if (fields.some((f) => f.trim() !== '')) records.push({ line: startLine, fields: fields.map((f) => f.trim()) });
  }
  return { records, problems };
}

function csvField(value: string): string {
  return /[",;\r\n]/.test(value) || value !== value.trim() ? `"${value.replace(/"/g, '""')}"` : value;
}

/** One row per machine; several MACs of one machine share the cell, separated by spaces. */
export function exportMachinesCsv(store: Store, machines: Machine[] = store.machines.list()): string {
  const entryNames = new Map(store.entries.list().map((e) => [e.id, e.name]));
  // Extra columns (answer-file values) follow the standard ones.
  const fields = machineFields(store);
  const extra = fields.names();
  const values = extra.length > 0 ? fields.all() : new Map<number, Record<string, string>>();
  const lines = [[...CSV_COLUMNS, ...extra].map(csvField).join(',')];
  for (const m of machines) {
    const entry = m.entryId === null ? '' : (entryNames.get(m.entryId) ?? '');
    const own = values.get(m.id) ?? {};
    lines.push([m.macs.join(' '), m.uuid ?? '', m.name, m.group, entry, ...extra.map((f) => own[f] ?? '')].map(csvField).join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}

interface ParsedRow {
  line: number;
  macs: string[];
  uuid?: string;
  name?: string;
  group?: string;
  entryId?: number | null;
  /** Extra columns' values (empty cells left out, so they keep the stored value). */
  fields?: Record<string, string>;
}

/**
 * Imports machines. A row names a machine by its MACs (or its UUID); a known machine is
 * updated, an unknown one created. An empty cell leaves the stored value as it is; the entry
 * cell `-` removes the assignment. Bad rows are reported and skipped; the good rows are
 * written in one transaction, so a failure midway writes none of them.
 */
export function importMachinesCsv(store: Store, text: string, options: { dryRun?: boolean } = {}): CsvImportResult {
  const { records, problems } = parseCsv(text);
  const result: CsvImportResult = { created: 0, updated: 0, problems };
  if (records.length === 0) {
    if (problems.length === 0)
      problems.push({ line: 1, problem: 'the file has no rows', fix: 'export from the spreadsheet as CSV with the columns mac,uuid,name,group,entry' });
    return result;
  }

  let columns: (CsvColumn | undefined)[];
  let rows = records;
  // Any other named column is kept as the machine's own value (answer-file templates use them).
  const extraColumns = new Map<number, string>();
  const header = records[0].fields.map((f) => COLUMN_ALIASES[f.toLowerCase()]);
  if (header.some((c) => c !== undefined)) {
    columns = header;
    rows = records.slice(1);
    records[0].fields.forEach((f, i) => {
      if (header[i] === undefined && machineFieldName(f) !== '') extraColumns.set(i, machineFieldName(f));
    });
    const unknown = records[0].fields.filter((f, i) => header[i] === undefined && f !== '' && !extraColumns.has(i));
    if (!columns.includes('mac') && !columns.includes('uuid')) {
      problems.push({
        line: records[0].line,
        problem: 'the header has no mac or uuid column',
        fix: 'name the columns mac,uuid,name,group,entry in the first line',
      });
      return result;
    }
    if (unknown.length > 0) {
      problems.push({
        line: records[0].line,
        problem: `unknown column(s) ${unknown.map((u) => `"${u}"`).join(', ')} are ignored`,
        fix: `use the column names ${CSV_COLUMNS.join(', ')}`,
      });
    }
  } else if (normalizeMac(records[0].fields[0].split(/\s+/)[0]) || normalizeUuid(records[0].fields[1] ?? '')) {
    // No header but the first cell is a MAC: the columns are in the documented order.
    columns = [...CSV_COLUMNS];
  } else {
    problems.push({
      line: records[0].line,
      problem: 'the first line is neither a header nor a machine',
      fix: 'start the file with the header line mac,uuid,name,group,entry',
    });
    return result;
  }

  const macsInFile = new Map<string, number>();
  const parsed: ParsedRow[] = [];
  for (const record of rows) {
    const cell = (name: CsvColumn): string | undefined => {
      const index = columns.indexOf(name);
      return index < 0 ? undefined : (record.fields[index] ?? '');
    };
    const report = (problem: string, fix: string) => problems.push({ line: record.line, problem, fix });
    if (record.fields.length > columns.length && record.fields.slice(columns.length).some((f) => f !== '')) {
      report(`${record.fields.length} fields but the header has ${columns.length}`, 'quote fields that contain the separator, or remove the extra cells');
      continue;
    }
    const row: ParsedRow = { line: record.line, macs: [] };
    let bad = false;
    for (const raw of (cell('mac') ?? '').split(/[\s,;|]+/).filter(Boolean)) {
      const mac = normalizeMac(raw);
      if (!mac) {
        report(`"${raw}" is not a MAC address`, 'write six hex pairs, e.g. 52:54:00:12:34:56 (several MACs separated by spaces)');
        bad = true;
      } else if (macsInFile.has(mac)) {
        report(`MAC ${mac} appears again (first on line ${macsInFile.get(mac)})`, 'keep one row per machine and remove the duplicate');
        bad = true;
      } else row.macs.push(mac);
    }
    const uuidCell = cell('uuid');
    if (uuidCell) {
      const uuid = normalizeUuid(uuidCell);
      if (!uuid) {
        report(`"${uuidCell}" is not a UUID`, 'write 32 hex digits as 8-4-4-4-12, or leave the cell empty');
        bad = true;
      } else row.uuid = uuid;
    }
    if (!bad && row.macs.length === 0 && !row.uuid) {
      report('the row has neither a MAC nor a UUID', "fill in the machine's MAC address (shown by the firmware or on the NIC label)");
      bad = true;
    }
    const entryCell = cell('entry');
    if (entryCell === '-') row.entryId = null;
    else if (entryCell) {
      const entry = store.entries.findByName(entryCell) ?? (/^#\d+$/.test(entryCell) ? store.entries.get(Number(entryCell.slice(1))) : undefined);
      if (!entry) {
        report(`there is no boot entry "${entryCell}"`, 'use the name of an entry in the library, - to clear the assignment, or leave the cell empty');
        bad = true;
      } else row.entryId = entry.id;
    }
    const name = cell('name');
    const group = cell('group');
    if (name) row.name = name;
    if (group) row.group = group;
    for (const [index, field] of extraColumns) {
      const value = record.fields[index] ?? '';
      if (value !== '') (row.fields ??= {})[field] = value;
    }

    if (!bad) {
      // The row's MACs and UUID must not point at two different machines.
      const owners = new Set<number>();
      for (const mac of row.macs) {
        const owner = store.machines.findByMac(mac);
        if (owner) owners.add(owner.id);
      }
      if (owners.size > 1) {
        report(
          `the MACs ${row.macs.join(' ')} belong to different machines (${[...owners].join(', ')})`,
          'put each machine on its own row, or remove a MAC from the other machine first',
        );
        bad = true;
      }
    }
    if (bad) continue;
    for (const mac of row.macs) macsInFile.set(mac, record.line);
    parsed.push(row);
  }
  problems.sort((a, b) => a.line - b.line);

  const write = () => {
    for (const row of parsed) {
      const existing = row.macs.map((m) => store.machines.findByMac(m)).find(Boolean) ?? (row.uuid ? store.machines.findByUuid(row.uuid) : undefined);
      if (existing) {
        const macs = [...new Set([...existing.macs, ...row.macs])];
        store.machines.update(existing.id, { macs, uuid: row.uuid, name: row.name, group: row.group, entryId: row.entryId });
        if (row.fields) machineFields(store).set(existing.id, row.fields);
        result.updated++;
      } else {
        const created = store.machines.create({ macs: row.macs, uuid: row.uuid, name: row.name, group: row.group, entryId: row.entryId });
        if (row.fields) machineFields(store).set(created.id, row.fields);
        result.created++;
      }
    }
  };
  if (options.dryRun) {
    for (const row of parsed) {
      const existing = row.macs.some((m) => store.machines.findByMac(m)) || (row.uuid ? store.machines.findByUuid(row.uuid) : undefined);
      if (existing) result.updated++;
      else result.created++;
    }
  } else {
    store.transaction(write);
  }
  return result;
}

export interface MachineHistory {
  format: 'bootbench.machine-history';
  version: 1;
  exportedAt: string;
  machine: Machine;
  entry: { id: number; name: string; kind: string } | null;
  transfers: ReturnType<Store['transfers']['listForMachine']>;
  events: ReturnType<Store['bootEvents']['listForMachine']>;
}

/** Everything recorded about one machine, oldest event first; undefined if there is no such machine. */
export function exportMachineHistory(store: Store, machineId: number): MachineHistory | undefined {
  const machine = store.machines.get(machineId);
  if (!machine) return undefined;
  const entry = machine.entryId === null ? undefined : store.entries.get(machine.entryId);
  return {
    format: 'bootbench.machine-history',
    version: 1,
    exportedAt: new Date(store.clock.now()).toISOString(),
    machine,
    entry: entry ? { id: entry.id, name: entry.name, kind: entry.kind } : null,
    transfers: store.transfers.listForMachine(machineId, { limit: Number.MAX_SAFE_INTEGER }).reverse(),
    events: store.bootEvents.listForMachine(machineId, { limit: Number.MAX_SAFE_INTEGER }),
  };
}
