/* <sys/ttydev.h> for cross builds with zig cc, whose macOS headers lack it.
 * Under USE_OLD_TTY it gives the 4.3BSD sgtty speed codes (the values the
 * old `ospeed` interface uses, small enough for a short), as macOS's own
 * header does; ncurses' baudrate() includes it that way on Darwin. */
#ifndef _TLSFORGE_STUB_SYS_TTYDEV_H_
#define _TLSFORGE_STUB_SYS_TTYDEV_H_
#ifdef USE_OLD_TTY
#define B0      0
#define B50     1
#define B75     2
#define B110    3
#define B134    4
#define B150    5
#define B200    6
#define B300    7
#define B600    8
#define B1200   9
#define B1800   10
#define B2400   11
#define B4800   12
#define B9600   13
#define EXTA    14
#define EXTB    15
#define B57600  16
#define B115200 17
#endif
#endif
