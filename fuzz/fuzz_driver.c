/* Replays a fuzz target without libFuzzer: every file of the corpus directory given
 * as argv[1], then a fixed number of pseudo-random mutations of them (seeded, so a
 * failure reproduces). Lets CI exercise every parser's fuzz target with gcc. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SEEDS 256
#define FUZZ_MAX_INPUT 65536

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

int main(int argc, char **argv)
{
    static uint8_t *seeds[MAX_SEEDS];
    static size_t seed_len[MAX_SEEDS];
    size_t n = 0;
    if (argc > 1) {
        DIR *d = opendir(argv[1]);
        struct dirent *de;
        while (d && (de = readdir(d)) != NULL && n < MAX_SEEDS) {
            if (de->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[1], de->d_name);
            FILE *f = fopen(path, "rb");
            if (!f)
                continue;
            seeds[n] = malloc(FUZZ_MAX_INPUT);
            seed_len[n] = fread(seeds[n], 1, FUZZ_MAX_INPUT, f);
            fclose(f);
            LLVMFuzzerTestOneInput(seeds[n], seed_len[n]);
            n++;
        }
        if (d)
            closedir(d);
    }
    long iters = getenv("GM_FUZZ_ITERS") ? atol(getenv("GM_FUZZ_ITERS")) : 20000;
    uint8_t *buf = malloc(FUZZ_MAX_INPUT);
    for (long i = 0; i < iters; i++) {
        size_t len;
        if (n > 0) {
            size_t s = rng() % n;
            len = seed_len[s];
            memcpy(buf, seeds[s], len);
            int muts = 1 + (int)(rng() % 8);
            for (int m = 0; m < muts && len > 0; m++) {
                switch (rng() % 4) {
                case 0: buf[rng() % len] ^= (uint8_t)(1u << (rng() % 8)); break;
                case 1: buf[rng() % len] = (uint8_t)rng(); break;
                case 2: len = rng() % (len + 1); break;
                default:
                    if (len < FUZZ_MAX_INPUT - 16) {
                        size_t at = rng() % (len + 1);
                        memmove(buf + at + 1, buf + at, len - at);
                        buf[at] = (uint8_t)rng();
                        len++;
                    }
                }
            }
        } else {
            len = rng() % 512;
            for (size_t k = 0; k < len; k++)
                buf[k] = (uint8_t)rng();
        }
        LLVMFuzzerTestOneInput(buf, len);
    }
    printf("%zu seeds, %ld mutated inputs: no crash\n", n, iters);
    free(buf);
    for (size_t i = 0; i < n; i++)
        free(seeds[i]);
    return 0;
}
