// Where an entry's answer-file template is kept: <data>/answers/e<id>.json, readable by the
// user running Bootbench only (folder 0700, file 0600), because templates hold passwords and
// product keys. Rendered files are never written: each request renders its own.
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BootEntry } from '../store/index.js';
import { ANSWER_DIALECTS, type AnswerDialect, type AnswerTemplate } from './answer-files.js';

export interface StoredAnswerTemplate extends AnswerTemplate {
  entryId: number;
  updatedAt: number;
}

interface TemplateFile {
  entryId: number;
  /** The entry's creation time: an entry number the database reuses after a removal does not inherit the file. */
  entryCreatedAt: number;
  dialect: AnswerDialect;
  text: string;
  updatedAt: number;
}

export function answersDir(dataDir: string): string {
  return join(dataDir, 'answers');
}

function templatePath(dataDir: string, entryId: number): string {
  return join(answersDir(dataDir), `e${entryId}.json`);
}

/** The entry's template, or undefined (none, or left behind by a removed entry of the same number). */
export function readAnswerTemplate(dataDir: string, entry: Pick<BootEntry, 'id' | 'createdAt'>): StoredAnswerTemplate | undefined {
  let file: TemplateFile;
  try {
    file = JSON.parse(readFileSync(templatePath(dataDir, entry.id), 'utf8')) as TemplateFile;
  } catch {
    return undefined;
  }
  if (file.entryId !== entry.id || file.entryCreatedAt !== entry.createdAt || !ANSWER_DIALECTS.includes(file.dialect) || typeof file.text !== 'string')
    return undefined;
  return { entryId: entry.id, dialect: file.dialect, text: file.text, updatedAt: file.updatedAt };
}

/** Writes the template (whole, by rename) with owner-only permissions. */
export function writeAnswerTemplate(dataDir: string, entry: Pick<BootEntry, 'id' | 'createdAt'>, template: AnswerTemplate, now: number): StoredAnswerTemplate {
  const dir = answersDir(dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // mkdir's mode applies only when it creates the folder, and through the umask.
  chmodSync(dir, 0o700);
  const file: TemplateFile = { entryId: entry.id, entryCreatedAt: entry.createdAt, dialect: template.dialect, text: template.text, updatedAt: now };
  const target = templatePath(dataDir, entry.id);
  const partial = `${target}.${process.pid}.partial`;
  writeFileSync(partial, JSON.stringify(file, null, 1), { mode: 0o600 });
  chmodSync(partial, 0o600);
  renameSync(partial, target);
  return { entryId: entry.id, dialect: template.dialect, text: template.text, updatedAt: now };
}

export function removeAnswerTemplate(dataDir: string, entryId: number): boolean {
  const path = templatePath(dataDir, entryId);
  if (!existsSync(path)) return false;
  rmSync(path, { force: true });
  return true;
}

/** Entry ids that have a template file (whether it still belongs to a live entry is readAnswerTemplate's check). */
export function answerTemplateIds(dataDir: string): number[] {
  try {
    return readdirSync(answersDir(dataDir))
      .map((n) => /^e(\d+)\.json$/.exec(n)?.[1])
      .filter((id): id is string => id !== undefined)
      .map(Number);
  } catch {
    return [];
  }
}
