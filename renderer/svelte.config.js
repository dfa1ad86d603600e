// Read by @sveltejs/vite-plugin-svelte. Runes everywhere: no legacy reactive syntax.
export default {
  compilerOptions: { runes: true },
};
