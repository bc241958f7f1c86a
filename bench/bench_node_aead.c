/* Raw ChaCha20-Poly1305 speed through gm_noise_encrypt / gm_noise_decrypt (what every
 * peer link and end-to-end session does per message), the ceiling for node throughput
 * (bench/bench_node.sh compares against it). Medians of RUNS runs.
 * `bench_node_aead SIZE` prints only the median MB/s of one encrypt+decrypt pass average
 * for SIZE-byte messages (for scripts). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "noise.h"
#include "gm/util.h"

#include "bench_util.h"

#define RUNS 7

/* MB/s (1e6 bytes) of encrypt and decrypt of size-byte messages, about 0.3 s each. */
static void measure(size_t size, double *enc, double *dec)
{
    static uint8_t pt[GM_NOISE_MAX_PLAINTEXT], ct[GM_NOISE_MAX_MSG], out[GM_NOISE_MAX_MSG];
    gm_noise_cipher tx, rx;
    gm_error err = {0};
    memset(&tx, 0, sizeof tx);
    randombytes_buf(tx.k, sizeof tx.k);
    tx.has_key = 1;
    rx = tx;
    randombytes_buf(pt, size);
    size_t clen, olen;
    long n = 0;
    double s = now_s(), e;
    do {
        for (int k = 0; k < 16; k++)
            if (gm_noise_encrypt(&tx, NULL, 0, pt, size, ct, sizeof ct, &clen, &err) != 0)
                exit(1);
        n += 16;
    } while ((e = now_s()) - s < 0.3);
    *enc = (double)n * (double)size / (e - s) / 1e6;
    /* Decrypt needs the matching nonces: re-encrypt a batch, decrypt it in order. */
    long m = 0;
    double busy = 0;
    gm_noise_cipher tx2 = rx;
    do {
        static uint8_t batch[16][GM_NOISE_MAX_MSG];
        size_t blen[16];
        for (int k = 0; k < 16; k++)
            gm_noise_encrypt(&tx2, NULL, 0, pt, size, batch[k], sizeof batch[k], &blen[k], &err);
        double t0 = now_s();
        for (int k = 0; k < 16; k++)
            if (gm_noise_decrypt(&rx, NULL, 0, batch[k], blen[k], out, sizeof out, &olen, &err) != 0)
                exit(1);
        busy += now_s() - t0;
        m += 16;
    } while (busy < 0.3);
    *dec = (double)m * (double)size / busy / 1e6;
    gm_noise_cipher_wipe(&tx);
    gm_noise_cipher_wipe(&rx);
    gm_noise_cipher_wipe(&tx2);
}

int main(int argc, char **argv)
{
    gm_error err = {0};
    if (gm_init(&err) != 0)
        return 1;
    const size_t sizes[] = {1024, 16384, 60000};
    if (argc == 2) {
        size_t size = (size_t)strtoul(argv[1], NULL, 10);
        if (size == 0 || size > GM_NOISE_MAX_PLAINTEXT)
            return 2;
        double avg[RUNS];
        for (int r = 0; r < RUNS; r++) {
            double e, d;
            measure(size, &e, &d);
            avg[r] = 2 / (1 / e + 1 / d);
        }
        printf("%.0f\n", median(avg, RUNS));
        return 0;
    }
    printf("ChaCha20-Poly1305 via gm_noise (MB/s, median of %d)\n", RUNS);
    printf("  %8s %10s %10s\n", "message", "encrypt", "decrypt");
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        double e[RUNS], d[RUNS];
        for (int r = 0; r < RUNS; r++)
            measure(sizes[i], &e[r], &d[r]);
        printf("  %8zu %10.0f %10.0f\n", sizes[i], median(e, RUNS), median(d, RUNS));
    }
    return 0;
}
