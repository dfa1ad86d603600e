// Answer files of the library's entries: which entry carries a template (and in which
// dialect), the one being edited, and what refuses it for the machines that boot it.
import type { ApiClient } from '../transport.js';
import type { AnswerDialect, AnswerTemplateInfo } from '../../../../preload/api.js';

export const DIALECT_LABELS: Record<AnswerDialect, string> = {
  preseed: 'Debian preseed',
  autoinstall: 'Ubuntu autoinstall (user-data)',
  kickstart: 'Fedora/RHEL kickstart',
  autounattend: 'Windows autounattend.xml',
};

/** A starting point per dialect, so the technician sees where the variables go. */
export const DIALECT_EXAMPLES: Record<AnswerDialect, string> = {
  preseed: 'd-i netcfg/get_hostname string {{name}}\nd-i mirror/http/hostname string deb.debian.org\nd-i passwd/root-password password changeme\n',
  autoinstall: '#cloud-config\nautoinstall:\n  version: 1\n  identity:\n    hostname: {{name}}\n    username: student\n    password: "$6$..."\n',
  kickstart: 'network --bootproto=dhcp --hostname={{name}}\nrootpw --lock\n',
  autounattend:
    '<?xml version="1.0" encoding="utf-8"?>\n<unattend xmlns="urn:schemas-microsoft-com:unattend">\n  <settings pass="specialize">\n' +
    '    <component name="Microsoft-Windows-Shell-Setup" processorArchitecture="amd64" publicKeyToken="31bf3856ad364e35" language="neutral" versionScope="nonSxS">\n' +
    '      <ComputerName>{{name}}</ComputerName>\n    </component>\n  </settings>\n</unattend>\n',
};

export class AnswerFilesState {
  /** Entries with a template: dialect and refusals (no text). */
  byEntry = $state.raw<Map<number, AnswerTemplateInfo>>(new Map());
  /** The template open in the editor. */
  editing = $state.raw<(AnswerTemplateInfo & { dialect: AnswerDialect; text: string }) | undefined>(undefined);
  saving = $state(false);
  error = $state<string | undefined>(undefined);
  saved = $state<string | undefined>(undefined);

  constructor(private readonly api: ApiClient) {}

  async load(): Promise<void> {
    try {
      const list = await this.api.call('answers:list');
      this.byEntry = new Map(list.map((a) => [a.entryId, a]));
    } catch {
      // A host without a data folder has no answer files: the screen shows none.
      this.byEntry = new Map();
    }
  }

  async open(entryId: number): Promise<void> {
    this.error = undefined;
    this.saved = undefined;
    try {
      const info = await this.api.call('answers:get', { entryId });
      this.editing = { ...info, dialect: info.dialect ?? 'preseed', text: info.text ?? DIALECT_EXAMPLES[info.dialect ?? 'preseed'] };
    } catch (err) {
      this.error = (err as Error).message;
    }
  }

  close(): void {
    this.editing = undefined;
    this.error = undefined;
    this.saved = undefined;
  }

  async save(dialect: AnswerDialect, text: string): Promise<void> {
    if (!this.editing) return;
    this.saving = true;
    this.error = undefined;
    this.saved = undefined;
    try {
      const info = await this.api.call('answers:set', { entryId: this.editing.entryId, dialect, text });
      this.editing = { ...info, dialect, text };
      this.remember(info);
      this.saved = info.refusals.length
        ? 'Saved, but some machines would not get their answers (below).'
        : 'Saved. Each PC that boots this entry gets its own answer file.';
    } catch (err) {
      this.error = (err as Error).message;
    } finally {
      this.saving = false;
    }
  }

  async remove(): Promise<void> {
    if (!this.editing) return;
    try {
      const info = await this.api.call('answers:remove', { entryId: this.editing.entryId });
      this.remember(info);
      this.close();
    } catch (err) {
      this.error = (err as Error).message;
    }
  }

  private remember(info: AnswerTemplateInfo): void {
    const next = new Map(this.byEntry);
    if (info.dialect) next.set(info.entryId, { ...info, text: undefined });
    else next.delete(info.entryId);
    this.byEntry = next;
  }
}
