# Takes kmsconf's apply lock on this host: a file created with CreateNew (which fails when it
# exists, atomically), holding the holder's record. A run that dies leaves the file behind;
# `kmsconf force-unlock HOST LOCK_ID` removes it.
$LockDir = Join-Path $env:ProgramData 'kmsconf'
$LockPath = Join-Path $LockDir 'apply.lock'
try {
    New-Item -ItemType Directory -Force -Path $LockDir | Out-Null
    $stream = $null
    try {
        $stream = [IO.File]::Open($LockPath, [IO.FileMode]::CreateNew, [IO.FileAccess]::Write, [IO.FileShare]::None)
    } catch {
        if (-not (Test-Path -LiteralPath $LockPath)) { throw }
    }
    if ($null -eq $stream) {
        Send-Kmsconf 'lock' ([ordered]@{ Acquired = $false; Holder = [IO.File]::ReadAllText($LockPath) })
    } else {
        try {
            $bytes = [Text.Encoding]::UTF8.GetBytes($Holder)
            $stream.Write($bytes, 0, $bytes.Length)
        } finally {
            $stream.Close()
        }
        Send-Kmsconf 'lock' ([ordered]@{ Acquired = $true; Holder = $null })
    }
} catch {
    Send-Kmsconf 'error' ([ordered]@{ HResult = (Get-KmsconfHResult $_); Message = $_.Exception.Message })
    exit 1
}
