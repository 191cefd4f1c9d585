/* A stand-in for Windows' bcryptprimitives.dll, for running kmsconf under Wine 8.0 only: Rust's
 * standard library (since 1.78) takes its random bytes from `ProcessPrng` in that DLL, which
 * Wine 8.0 does not have, and a Windows binary then exits 53 before printing anything. This one
 * answers from `BCryptGenRandom` (the system RNG Wine does have). Built and installed into the
 * Wine prefix by scripts/windows-check.sh; never shipped. */
#include <windows.h>
#include <bcrypt.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, data, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG)))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
