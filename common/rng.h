/* The toolkit's one random number generator: xorshift64*, fast, per owner
 * (each thread keeps its own state), seeded from getrandom(2). Not for
 * secrets: for spreading choices and timers. */
#ifndef TCPDIST_RNG_H
#define TCPDIST_RNG_H

#include <stdint.h>

/* A nonzero seed from the kernel (time and pid if it has none to give). */
uint64_t rng_seed(void);

/* The next number of the sequence in *state (nonzero). */
uint64_t rng_next(uint64_t *state);

/* Uniform in [0, 1). */
double rng_unit(uint64_t *state);

#endif
