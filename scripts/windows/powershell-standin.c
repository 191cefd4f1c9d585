/* A stand-in `powershell.exe` for the end-to-end test of `target = "local"` under Wine, whose own
 * powershell.exe is a stub that runs nothing. It ignores PowerShell's arguments and runs
 * `%KMSCONF_STANDIN_EXE% lab agent %KMSCONF_STANDIN_LAB%` with the same standard input, output
 * and error, and exits with its exit code: the lab agent then answers the requests kmsconf sends,
 * as the real agent script would on a KMS host. Built by scripts/windows-check.sh; never shipped. */
#include <windows.h>
#include <stdio.h>
#include <wchar.h>

static const wchar_t *need(const wchar_t *name)
{
    const wchar_t *value = _wgetenv(name);
    if (value == NULL || *value == L'\0') {
        fwprintf(stderr, L"powershell stand-in: `%ls` is not set\n", name);
        ExitProcess(2);
    }
    return value;
}

int wmain(void)
{
    const wchar_t *exe = need(L"KMSCONF_STANDIN_EXE");
    const wchar_t *lab = need(L"KMSCONF_STANDIN_LAB");
    wchar_t line[4096];
    if (_snwprintf(line, 4096, L"\"%ls\" lab agent \"%ls\"", exe, lab) < 0) {
        fwprintf(stderr, L"powershell stand-in: the command line is too long\n");
        return 2;
    }
    line[4095] = L'\0';
    STARTUPINFOW start = { .cb = sizeof start, .dwFlags = STARTF_USESTDHANDLES };
    start.hStdInput = GetStdHandle(STD_INPUT_HANDLE);
    start.hStdOutput = GetStdHandle(STD_OUTPUT_HANDLE);
    start.hStdError = GetStdHandle(STD_ERROR_HANDLE);
    PROCESS_INFORMATION child;
    if (!CreateProcessW(exe, line, NULL, NULL, TRUE, 0, NULL, NULL, &start, &child)) {
        fwprintf(stderr, L"powershell stand-in: cannot start `%ls` (error %lu)\n", exe, GetLastError());
        return 2;
    }
    WaitForSingleObject(child.hProcess, INFINITE);
    DWORD code = 1;
    GetExitCodeProcess(child.hProcess, &code);
    return (int)code;
}
