/* Minimal <util.h> for cross builds with zig cc, whose macOS headers lack it.
 * Declares the libSystem pty helpers as macOS's own <util.h> does. */
#ifndef _TLSFORGE_STUB_UTIL_H_
#define _TLSFORGE_STUB_UTIL_H_
#include <sys/types.h>
#include <termios.h>
#include <sys/ttycom.h>   /* struct winsize */
#ifdef __cplusplus
extern "C" {
#endif
int openpty(int *, int *, char *, struct termios *, struct winsize *);
int forkpty(int *, char *, struct termios *, struct winsize *);
int login_tty(int);
#ifdef __cplusplus
}
#endif
#endif
