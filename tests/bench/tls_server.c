/* The TLS server of `cargo xtask bench`: a loopback server quicker than the
 * clients it measures, so that the bulk rate is the client's.
 *
 * usage: tls_server PORT CERT KEY CIPHERSUITE MIB
 *
 * `openssl s_server -WWW` read its file 16 KiB at a time and wrote each
 * record with its own write(2); on loopback the sender's write also pays
 * for the receiver's TCP work, so s_server was on CPU for 93-98 % of a
 * transfer and set the rate for both interpreters. This server keeps the
 * body in memory and queues its records in a 1 MiB write buffer (a
 * BIO_f_buffer under the TLS layer), so one write(2) carries about 64
 * records.
 *
 * Connections are served one after another. A request is read up to its
 * blank line: "GET /big" is answered with MIB MiB of body, anything else
 * (the handshake rounds connect and close) with nothing. Prints "ready" on
 * stdout once it listens.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHUNK (1 << 20)

static void die(const char *what) {
    fprintf(stderr, "tls_server: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

/* The request up to its blank line (or the peer's close); 1 if it asked for /big. */
static int read_request(SSL *ssl) {
    char req[4096];
    size_t len = 0;
    while (len < sizeof req - 1) {
        int n = SSL_read(ssl, req + len, (int)(sizeof req - 1 - len));
        if (n <= 0)
            return 0;
        len += (size_t)n;
        req[len] = 0;
        if (strstr(req, "\r\n\r\n"))
            return strncmp(req, "GET /big ", 9) == 0;
    }
    return 0;
}

static void serve(SSL_CTX *ctx, int fd, const unsigned char *body, size_t body_len) {
    SSL *ssl = SSL_new(ctx);
    BIO *sock = BIO_new_socket(fd, BIO_NOCLOSE);
    BIO *buffered = BIO_new(BIO_f_buffer());
    if (!ssl || !sock || !buffered || !BIO_set_write_buffer_size(buffered, CHUNK))
        die("out of memory");
    BIO_push(buffered, sock);
    /* reads straight from the socket, writes through the buffer */
    BIO_up_ref(sock);
    SSL_set_bio(ssl, sock, buffered);
    if (SSL_accept(ssl) == 1 && read_request(ssl)) {
        static const char head[] = "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n";
        int ok = SSL_write(ssl, head, sizeof head - 1) > 0;
        for (size_t off = 0; ok && off < body_len; off += CHUNK) {
            size_t n = body_len - off < CHUNK ? body_len - off : CHUNK;
            ok = SSL_write(ssl, body + off, (int)n) == (int)n;
        }
        if (ok)
            SSL_shutdown(ssl);
        BIO_flush(buffered);
    }
    SSL_free(ssl);
    ERR_clear_error();
    close(fd);
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: tls_server PORT CERT KEY CIPHERSUITE MIB\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION)
        || SSL_CTX_use_certificate_chain_file(ctx, argv[2]) != 1
        || SSL_CTX_use_PrivateKey_file(ctx, argv[3], SSL_FILETYPE_PEM) != 1
        || SSL_CTX_set_ciphersuites(ctx, argv[4]) != 1)
        die("the certificate, key or cipher suite was not accepted");
    /* every handshake a full one (the clients keep no sessions), and no
     * tickets to read after it (s_server sent two) */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);

    size_t body_len = (size_t)strtoul(argv[5], NULL, 10) << 20;
    unsigned char *body = malloc(body_len ? body_len : 1);
    if (!body)
        die("out of memory for the body");
    memset(body, 0x5a, body_len);

    int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1]))};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) || listen(lfd, 64))
        die("cannot listen on the port");
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd >= 0)
            serve(ctx, fd, body, body_len);
    }
}
