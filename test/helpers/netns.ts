// The namespace helpers live in bench/ (the bench uses them and must not import tests).
export * from '../../bench/netns.js';
