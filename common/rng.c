#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "rng.h"

uint64_t rng_seed(void)
{
	uint64_t seed;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
		seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	return seed | 1;
}

uint64_t rng_next(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

double rng_unit(uint64_t *state)
{
	return (double)(rng_next(state) >> 11) / (double)(1ull << 53);
}
