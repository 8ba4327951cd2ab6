/*
 * bcryptprimitives.dll for Wine 8.0: TEST CODE, placed beside the agent's
 * .exe in the Wine test only. Rust's std on windows-gnu imports ProcessPrng
 * from bcryptprimitives.dll (Windows 10+), which Wine 8.0 lacks; this one
 * draws from RtlGenRandom (advapi32 SystemFunction036), which Wine has.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk)) return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
