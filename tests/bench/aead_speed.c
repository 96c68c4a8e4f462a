/* OpenSSL's AEAD ciphers alone, for `cargo xtask bench`: decrypts (and
 * checks the tag of) 16 KiB records for about a second per cipher, as a
 * TLS 1.3 client does, and prints one line per cipher:
 *   <cipher> <MB/s> <OpenSSL version>
 * Built twice by the benchmark: against our libcrypto.a and against the
 * machine's libcrypto (what the stock interpreters use). */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define RECORD 16384

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int run(const char *name)
{
    static unsigned char key[32], iv[12], plain[RECORD], sealed[RECORD + 16], tag[16];
    EVP_CIPHER *cipher = EVP_CIPHER_fetch(NULL, name, NULL);
    EVP_CIPHER_CTX *enc = EVP_CIPHER_CTX_new(), *dec = EVP_CIPHER_CTX_new();
    int len, fin;
    long records = 0;
    double start;

    if (cipher == NULL || enc == NULL || dec == NULL) {
        fprintf(stderr, "%s: not available\n", name);
        return 1;
    }
    memset(plain, 0x5a, sizeof plain);
    if (!EVP_EncryptInit_ex2(enc, cipher, key, iv, NULL)
        || !EVP_EncryptUpdate(enc, sealed, &len, plain, RECORD)
        || !EVP_EncryptFinal_ex(enc, sealed + len, &fin)
        || !EVP_CIPHER_CTX_ctrl(enc, EVP_CTRL_AEAD_GET_TAG, 16, tag)) {
        fprintf(stderr, "%s: encryption failed\n", name);
        return 1;
    }
    start = now();
    do {
        for (int i = 0; i < 64; i++, records++) {
            if (!EVP_DecryptInit_ex2(dec, cipher, key, iv, NULL)
                || !EVP_DecryptUpdate(dec, plain, &len, sealed, RECORD)
                || !EVP_CIPHER_CTX_ctrl(dec, EVP_CTRL_AEAD_SET_TAG, 16, tag)
                || EVP_DecryptFinal_ex(dec, plain + len, &fin) <= 0) {
                fprintf(stderr, "%s: the tag did not verify\n", name);
                return 1;
            }
        }
    } while (now() - start < 1.0);
    printf("%s %.1f %s\n", name, records * (double)RECORD / 1e6 / (now() - start),
           OpenSSL_version(OPENSSL_VERSION));
    EVP_CIPHER_CTX_free(enc);
    EVP_CIPHER_CTX_free(dec);
    EVP_CIPHER_free(cipher);
    return 0;
}

int main(int argc, char **argv)
{
    int failed = 0;
    for (int i = 1; i < argc; i++)
        failed |= run(argv[i]);
    return failed;
}
