# Releases kmsconf's apply lock on this host if its record carries $LockId; otherwise reports
# the record that is there (or that there is none).
$LockPath = Join-Path (Join-Path $env:ProgramData 'kmsconf') 'apply.lock'
try {
    if (-not (Test-Path -LiteralPath $LockPath)) {
        Send-Kmsconf 'unlock' ([ordered]@{ Released = $false; Holder = $null })
    } else {
        $current = [IO.File]::ReadAllText($LockPath)
        $id = $null
        try { $id = ($current | ConvertFrom-Json).id } catch { $id = $null }
        if ($id -eq $LockId) {
            Remove-Item -LiteralPath $LockPath -Force
            Send-Kmsconf 'unlock' ([ordered]@{ Released = $true; Holder = $current })
        } else {
            Send-Kmsconf 'unlock' ([ordered]@{ Released = $false; Holder = $current })
        }
    }
} catch {
    Send-Kmsconf 'error' ([ordered]@{ HResult = (Get-KmsconfHResult $_); Message = $_.Exception.Message })
    exit 1
}
