// The Library screen's answer-file calls (AnswerFilesApi in api.ts): an entry's template,
// kept in the data folder (main/library/answer-files-store.ts), and what would refuse it for
// the machines that boot the entry, in words that name the machine and the variable.
import { machineFields, type Store } from '../store/index.js';
import {
  answerRefusals,
  answerRefusalsFor,
  answerTemplateIds,
  checkTemplate,
  knownVariables,
  readAnswerTemplate,
  removeAnswerTemplate,
  writeAnswerTemplate,
  type StoredAnswerTemplate,
} from '../library/index.js';
import { ApiError, type AnswerFilesApi } from './api.js';
import type { AnswerTemplateInfo } from '../../preload/api.js';

export interface StoreAnswersOptions {
  store: Store;
  dataDir: () => string;
}

// Rendering for a check needs some host; the refusals depend on the machines' values only.
const CHECK_HOST = { serverAddress: '192.0.2.1', httpBaseUrl: 'http://192.0.2.1' };

export function storeAnswers(options: StoreAnswersOptions): AnswerFilesApi {
  const { store } = options;
  const entry = (entryId: number) => {
    const found = store.entries.get(entryId);
    if (!found) throw new ApiError('not-found', `There is no boot entry number ${entryId} (it may have been removed): reload the list.`);
    return found;
  };
  const info = (entryId: number, withText: boolean, template?: StoredAnswerTemplate): AnswerTemplateInfo => {
    const e = entry(entryId);
    const stored = template ?? readAnswerTemplate(options.dataDir(), e);
    return {
      entryId,
      ...(stored ? { dialect: stored.dialect, ...(withText ? { text: stored.text } : {}) } : {}),
      variables: knownVariables(machineFields(store).names()),
      refusals: stored ? answerRefusals({ store, dataDir: options.dataDir(), ...CHECK_HOST }, e, stored) : [],
    };
  };
  return {
    list: () =>
      answerTemplateIds(options.dataDir())
        .filter((id) => {
          const e = store.entries.get(id);
          return e !== undefined && readAnswerTemplate(options.dataDir(), e) !== undefined;
        })
        .sort((a, b) => a - b)
        .map((id) => info(id, false)),
    get: (entryId) => info(entryId, true),
    set: (request) => {
      const e = entry(request.entryId);
      if (e.kind === 'local-disk') throw new ApiError('invalid-request', `"${e.name}" boots the disk: it runs no installer to give answers to.`);
      const problems = checkTemplate({ dialect: request.dialect, text: request.text }, machineFields(store).names());
      if (problems.length > 0) throw new ApiError('invalid-request', `Not saved. ${problems.join(' ')}`);
      const saved = writeAnswerTemplate(options.dataDir(), e, { dialect: request.dialect, text: request.text }, store.clock.now());
      return info(e.id, true, saved);
    },
    refusalsFor: (entryId, machineIds) => {
      // A missing entry is refused by the assignment itself, in its own words.
      const e = store.entries.get(entryId);
      if (!e) return [];
      const machines = machineIds.map((id) => store.machines.get(id)).filter((m) => m !== undefined);
      return answerRefusalsFor({ store, dataDir: options.dataDir(), ...CHECK_HOST }, e, machines);
    },
    remove: (entryId) => {
      entry(entryId);
      removeAnswerTemplate(options.dataDir(), entryId);
      return info(entryId, true);
    },
  };
}
