try {
    $os = Get-CimInstance -ClassName Win32_OperatingSystem | Select-Object -Property Caption, Version
    Send-Kmsconf 'discovery' ([ordered]@{
        ComputerName = $env:COMPUTERNAME
        OperatingSystem = $os
        SoftwareLicensingService = Get-KmsconfService
        SoftwareLicensingProduct = Get-KmsconfProducts $ProductFilter
        SoftwareProtectionPlatform = Get-KmsconfRegistry
        FirewallRules = Get-KmsconfFirewallRules
        Clock = [ordered]@{
            Utc = [DateTime]::UtcNow.ToString('o')
            TimeZone = [TimeZoneInfo]::Local.Id
            UtcOffsetMinutes = [int][TimeZoneInfo]::Local.GetUtcOffset([DateTime]::Now).TotalMinutes
        }
    })
} catch {
    Send-Kmsconf 'error' ([ordered]@{ HResult = (Get-KmsconfHResult $_); Message = $_.Exception.Message })
    exit 1
}
