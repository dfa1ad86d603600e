// The public entry of main/pxe/: what other folders may use.
export { mayHaveOwnAssignment, type AssignedIdentities } from './assignment-view.js';
export {
  chooseBootFile,
  type BootClass,
  type BootClient,
  type BootDecision,
  type BootPolicyConfig,
  type MachineBootAssignment,
  type ResolvedMenuItem,
} from './boot-policy.js';
