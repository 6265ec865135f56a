/*
 * /init of the tiny test guest (built by tiny-guest.ts): mounts /proc, /sys and /dev, loads the
 * ACPI button and evdev modules, prints V2VLOAD-TINY-BOOTED on the console, then powers off
 * when the ACPI power button is pressed.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <linux/input.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <unistd.h>

static void say(const char *s) {
  int fd = open("/dev/console", O_WRONLY | O_NOCTTY);
  if (fd < 0) fd = 1;
  (void)!write(fd, s, strlen(s));
  if (fd != 1) close(fd);
}

static void load(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  syscall(SYS_finit_module, fd, "", 0);
  close(fd);
}

int main(void) {
  mount("proc", "/proc", "proc", 0, NULL);
  mount("sysfs", "/sys", "sysfs", 0, NULL);
  mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
  load("/modules/button.ko");
  load("/modules/evdev.ko");
  usleep(300000);
  say("\nV2VLOAD-TINY-BOOTED\n");
  struct pollfd fds[32];
  int n = 0;
  for (int tries = 0; n == 0 && tries < 50; tries++) {
    DIR *d = opendir("/dev/input");
    struct dirent *e;
    while (d && (e = readdir(d)) && n < 32) {
      if (strncmp(e->d_name, "event", 5) != 0) continue;
      char p[300];
      snprintf(p, sizeof p, "/dev/input/%s", e->d_name);
      int fd = open(p, O_RDONLY);
      if (fd >= 0) { fds[n].fd = fd; fds[n].events = POLLIN; n++; }
    }
    if (d) closedir(d);
    if (n == 0) usleep(100000);
  }
  say(n ? "V2VLOAD-TINY-WAITING\n" : "V2VLOAD-TINY-NO-INPUT\n");
  for (;;) {
    if (poll(fds, n, -1) <= 0) { if (n == 0) pause(); continue; }
    for (int i = 0; i < n; i++) {
      if (!(fds[i].revents & POLLIN)) continue;
      struct input_event ev;
      while (read(fds[i].fd, &ev, sizeof ev) == (ssize_t)sizeof ev) {
        if (ev.type == EV_KEY && ev.code == KEY_POWER && ev.value == 1) {
          say("V2VLOAD-TINY-POWEROFF\n");
          sync();
          reboot(RB_POWER_OFF);
        }
        break;
      }
    }
  }
}
