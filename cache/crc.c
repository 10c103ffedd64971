/* CRC-32 (zlib's polynomial, the one S3's x-amz-checksum-crc32 uses) of cached bytes. */
#include <zlib.h>

#include "cache-int.h"

uint32_t crc_update(uint32_t crc, const void *buf, size_t len)
{
	return (uint32_t)crc32_z(crc, buf, len);
}
