/* lotactl: talks to lotad's admin endpoint. */
#include <stdio.h>

int main(int argc, char **argv)
{
	fprintf(stderr, "lotactl: not yet\n");
	return 1;
}
