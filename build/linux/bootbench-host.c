/*
 * bootbench-host: runs the Bootbench service host with the two network capabilities it needs
 * on Linux, and nothing else with them.
 *
 * The .deb's post-install gives THIS file (not the Electron binary) the capabilities, in its
 * permitted set only:
 *     setcap cap_net_bind_service,cap_net_raw=p /opt/Bootbench/bootbench-host
 * It then execs the Electron binary next to it in Node mode (ELECTRON_RUN_AS_NODE=1) on a
 * script fixed at compile time inside app.asar, with the capabilities passed as AMBIENT
 * capabilities (capabilities(7), "Ambient capability set", Linux 4.3+): they survive the exec
 * of a binary that has no file capabilities of its own. The Electron binary on disk stays
 * plain, so the desktop app started from the menu, its renderer and GPU processes never hold
 * them: only processes started through this launcher do, and they run no Chromium.
 *
 *   bootbench-host serve|doctor|interfaces|entries ...  -> dist/main/cli/bootbench.js
 *   bootbench-host web ...                              -> dist/main/cli/web.js
 *   bootbench-host app-host ...                         -> dist/main/app/host-process.js
 *     (the desktop app's service host, spoken to over stdin/stdout: main/app/host-link.ts)
 *
 * The started process learns how it was started from BOOTBENCH_LAUNCHER (this file) and
 * BOOTBENCH_APPIMAGE (the AppImage, if any), so its fix texts name the right thing
 * (main/net/privileges.ts, detectPackaging).
 *
 * Why a compiled launcher and not setcap on something else:
 *  - setcap on the Electron binary: every process exec'ed from it (renderer, GPU, utility
 *    processes) would get the capabilities; the issue forbids it.
 *  - a shell script: file capabilities on scripts are ignored by the kernel.
 *  - a copy of the Electron binary with capabilities: 180 MB more, and it would run any
 *    script anyone gives it with raw sockets. This launcher only runs our own script, from
 *    a root-owned folder, with a cleaned environment (no NODE_OPTIONS, no LD_PRELOAD: with
 *    ambient capabilities the loader is not in secure mode, so they must not get through).
 *
 * Without the capabilities (AppImage: its files are on a read-only mount and cannot carry
 * any) it says what to run instead and starts anyway; the host's doctor reports the rest.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#endif

#ifndef BOOTBENCH_ELECTRON_NAME
#define BOOTBENCH_ELECTRON_NAME "bootbench"
#endif
#define CLI_SCRIPT "resources/app.asar/dist/main/cli/bootbench.js"
#define WEB_SCRIPT "resources/app.asar/dist/main/cli/web.js"
#define APP_HOST_SCRIPT "resources/app.asar/dist/main/app/host-process.js"

static const int wanted_caps[] = {CAP_NET_BIND_SERVICE, CAP_NET_RAW};
#define WANTED_COUNT (sizeof wanted_caps / sizeof wanted_caps[0])

/* Variables the service host may read; everything else is dropped before the exec. */
static const char *const kept_variables[] = {
    "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TERM", "NO_COLOR",
    "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME",
    "BOOTBENCH_DATA", NULL,
};

static int is_kept(const char *entry) {
  if (strncmp(entry, "LC_", 3) == 0) return 1;
  for (const char *const *name = kept_variables; *name; name++) {
    size_t n = strlen(*name);
    if (strncmp(entry, *name, n) == 0 && entry[n] == '=') return 1;
  }
  return 0;
}

/* Raises each wanted capability that is permitted into inheritable, then ambient.
 * Returns how many of them are now ambient. */
static unsigned raise_ambient(void) {
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capget, &header, data) != 0) return 0;
  unsigned permitted = 0;
  for (size_t i = 0; i < WANTED_COUNT; i++) {
    int cap = wanted_caps[i];
    if (data[CAP_TO_INDEX(cap)].permitted & CAP_TO_MASK(cap)) {
      /* capset(2): without CAP_SETPCAP the new inheritable set may only add permitted bits. */
      data[CAP_TO_INDEX(cap)].inheritable |= CAP_TO_MASK(cap);
      permitted++;
    }
  }
  if (permitted == 0) return 0;
  if (syscall(SYS_capset, &header, data) != 0) return 0;
  unsigned raised = 0;
  for (size_t i = 0; i < WANTED_COUNT; i++) {
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, wanted_caps[i], 0, 0) == 0) raised++;
  }
  return raised;
}

/* With capabilities, refuse to run files that someone other than root could have swapped. */
static int safe_path(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) return 0;
  return st.st_uid == 0 && (st.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

int main(int argc, char **argv) {
  char self[PATH_MAX];
  ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  if (len <= 0) {
    perror("bootbench-host: cannot find its own path");
    return 127;
  }
  self[len] = '\0';
  char *slash = strrchr(self, '/');
  if (!slash) return 127;
  *slash = '\0'; /* self is now the installation folder */

  int web = argc > 1 && strcmp(argv[1], "web") == 0;
  int app_host = argc > 1 && strcmp(argv[1], "app-host") == 0;
  const char *chosen = web ? WEB_SCRIPT : app_host ? APP_HOST_SCRIPT : CLI_SCRIPT;
  char electron[PATH_MAX], script[PATH_MAX], launcher_var[PATH_MAX + 32];
  if (snprintf(electron, sizeof electron, "%s/%s", self, BOOTBENCH_ELECTRON_NAME) >= (int)sizeof electron ||
      snprintf(script, sizeof script, "%s/%s", self, chosen) >= (int)sizeof script ||
      snprintf(launcher_var, sizeof launcher_var, "BOOTBENCH_LAUNCHER=%s/bootbench-host", self) >= (int)sizeof launcher_var) {
    fprintf(stderr, "bootbench-host: installation path too long\n");
    return 127;
  }

  unsigned raised = raise_ambient();
  if (raised > 0 && (!safe_path(self) || !safe_path(electron))) {
    fprintf(stderr,
            "bootbench-host: refusing to run %s with network capabilities: it or its folder is not "
            "owned by root or is writable by others\n",
            electron);
    return 126;
  }
  if (raised < WANTED_COUNT) {
    fprintf(stderr, "bootbench-host: running without the network capabilities (ports 67, 69 and 4011 need them).\n");
    if (getenv("APPIMAGE")) {
      /* Files inside an AppImage's read-only mount cannot carry capabilities. */
      fprintf(stderr,
              "  AppImage: let programs open ports from 67 up (machine-wide; the .deb grants it to Bootbench only):\n"
              "  echo 'net.ipv4.ip_unprivileged_port_start=67' | sudo tee /etc/sysctl.d/60-bootbench.conf && sudo sysctl --system\n");
    } else {
      fprintf(stderr, "  sudo setcap cap_net_bind_service,cap_net_raw=p %s/bootbench-host\n", self);
    }
  }
  /* Nothing below may gain privileges through a setuid or file-capability exec. */
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);

  extern char **environ;
  size_t count = 0;
  for (char **e = environ; *e; e++) count++;
  char **env = calloc(count + 5, sizeof *env);
  if (!env) return 127;
  size_t n = 0;
  for (char **e = environ; *e; e++)
    if (is_kept(*e)) env[n++] = *e;
  env[n++] = "ELECTRON_RUN_AS_NODE=1";
  env[n++] = launcher_var;
  /* Only a flag and a path for the fix texts; APPIMAGE itself is not passed on. */
  static char appimage_var[PATH_MAX + 32];
  const char *appimage = getenv("APPIMAGE");
  if (appimage && snprintf(appimage_var, sizeof appimage_var, "BOOTBENCH_APPIMAGE=%s", appimage) < (int)sizeof appimage_var)
    env[n++] = appimage_var;
  env[n++] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  env[n] = NULL;

  /* argv: electron script [user arguments...]; the script path is ours, never the user's. */
  char **args = calloc((size_t)argc + 2, sizeof *args);
  if (!args) return 127;
  size_t a = 0;
  args[a++] = electron;
  args[a++] = script;
  for (int i = (web || app_host) ? 2 : 1; i < argc; i++) args[a++] = argv[i];
  args[a] = NULL;

  execve(electron, args, env);
  fprintf(stderr, "bootbench-host: cannot run %s: %s\n", electron, strerror(errno));
  return 127;
}
