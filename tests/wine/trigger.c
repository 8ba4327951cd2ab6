/*
 * ringside_trigger.sys: TEST CODE. It never ships in the package.
 *
 * Does nothing. Wine 8.0 runs no process or file callbacks, but it calls
 * image-load notify routines for every image loaded into the winedevice.exe
 * that hosts ringside.sys; each `sc start` of this driver in the same
 * service group is one image load for ringside.sys to report.
 */
#include <ntddk.h>
#include <ntimage.h>

extern IMAGE_DOS_HEADER __ImageBase;

static void NTAPI unload(PDRIVER_OBJECT driver)
{
    (void)driver;
}

NTSTATUS NTAPI DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING path)
{
    (void)path;
    /* Wine also calls a mingw-built driver's entry point as DllMain. */
    if ((void *)driver == (void *)&__ImageBase) return TRUE;
    LARGE_INTEGER now;
    /* Two imports, so the image has an import hash to check. */
    KeQuerySystemTime(&now);
    DbgPrint("ringside_trigger: loaded at %I64d\n", now.QuadPart);
    driver->DriverUnload = unload;
    return STATUS_SUCCESS;
}
