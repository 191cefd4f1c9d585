# kmsconf: the part every script kmsconf runs on a Windows host shares. It reads only CIM
# objects, registry values and NetSecurity cmdlets (never slmgr.vbs's localized text), and
# writes its answers as lines `KMSCONF:<kind>:<base64 of UTF-8 JSON>` so that neither the
# console code page nor stray output can garble them. Secrets arrive in $Request.secrets, read
# from standard input, never on a command line.
param($Request)
Set-StrictMode -Version 2.0
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$SppKey = 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion\SoftwareProtectionPlatform'
$SppKey32 = 'HKLM:\SOFTWARE\Wow6432Node\Microsoft\Windows NT\CurrentVersion\SoftwareProtectionPlatform'

function Send-Kmsconf([string]$Kind, $Value) {
    $json = ConvertTo-Json -InputObject $Value -Depth 8 -Compress
    $bytes = [Text.Encoding]::UTF8.GetBytes($json)
    [Console]::Out.WriteLine('KMSCONF:' + $Kind + ':' + [Convert]::ToBase64String($bytes))
    [Console]::Out.Flush()
}

# The HRESULT of a failure: the WMI error's error_Code, else the one in the record's
# FullyQualifiedErrorId (Invoke-CimMethod's `HRESULT 0xc004f050,Microsoft.Management...`), else
# one quoted in the message, else the exception's own HResult when it is not a generic .NET one
# (0x8013xxxx).
function Get-KmsconfHResult($ErrorRecord) {
    $e = $ErrorRecord.Exception
    $outer = $e
    while ($null -ne $e) {
        if ($e.PSObject.Properties['ErrorData'] -and $null -ne $e.ErrorData) {
            $code = $e.ErrorData.CimInstanceProperties['error_Code']
            if ($null -ne $code -and $null -ne $code.Value) { return ('0x{0:X8}' -f [uint32]$code.Value) }
        }
        $e = $e.InnerException
    }
    if ([string]$ErrorRecord.FullyQualifiedErrorId -match '0x[0-9A-Fa-f]{8}') { return $Matches[0] }
    $e = $outer
    while ($null -ne $e) {
        if ($e.Message -match '0x[0-9A-Fa-f]{8}') { return $Matches[0] }
        $e = $e.InnerException
    }
    $own = '0x{0:X8}' -f $outer.HResult
    if ($own.StartsWith('0x8013')) { return $null }
    return $own
}

# A method result with no ReturnValue, or a null one, is success (under StrictMode reading a
# missing property throws, so it is looked up first); a non-zero one is the HRESULT.
function Invoke-KmsconfMethod($Instance, [string]$Method, [hashtable]$Arguments = @{}) {
    $result = Invoke-CimMethod -InputObject $Instance -MethodName $Method -Arguments $Arguments
    $code = $null
    if ($null -ne $result -and $result.PSObject.Properties['ReturnValue']) { $code = $result.ReturnValue }
    if ($null -ne $code -and [uint32]$code -ne 0) {
        throw ('{0} returned 0x{1:X8}' -f $Method, [uint32]$code)
    }
}

# slmgr.vbs /ipk: the service's Version as REG_SZ KeyManagementServiceVersion (under the
# Wow6432Node key too, when it exists) while a keyed product is a KMS host (VOLUME_KMS, not
# VOLUME_KMSCLIENT), deleted otherwise.
function Set-KmsconfKmsVersion([string]$Version) {
    $kmsHosts = @(Get-CimInstance -ClassName SoftwareLicensingProduct -Filter 'PartialProductKey IS NOT NULL' |
        Where-Object { [string]$_.Description -match 'VOLUME_KMS' -and [string]$_.Description -notmatch 'VOLUME_KMSCLIENT' })
    foreach ($key in @($SppKey, $SppKey32)) {
        if (-not (Test-Path -LiteralPath $key)) { continue }
        if ($kmsHosts.Count -gt 0) { New-ItemProperty -Path $key -Name 'KeyManagementServiceVersion' -PropertyType String -Value $Version -Force | Out-Null }
        else { Remove-ItemProperty -Path $key -Name 'KeyManagementServiceVersion' -ErrorAction SilentlyContinue }
    }
}

# The KMS settings' properties ($SettingProperties, from kmsconf's table of settings) and the
# service's own.
function Get-KmsconfService {
    Get-CimInstance -ClassName SoftwareLicensingService | Select-Object -Property (@('Version',
        'IsKeyManagementServiceMachine', 'KeyManagementServiceCurrentCount', 'RequiredClientCount',
        'KeyManagementServiceTotalRequests', 'KeyManagementServiceFailedRequests',
        'KeyManagementServiceUnlicensedRequests', 'KeyManagementServiceLicensedRequests',
        'KeyManagementServiceOOBGraceRequests', 'KeyManagementServiceOOTGraceRequests',
        'KeyManagementServiceNonGenuineGraceRequests', 'KeyManagementServiceNotificationRequests',
        'ClientMachineID', 'RemainingWindowsReArmCount') + $SettingProperties)
}

function Get-KmsconfProducts([string]$Filter) {
    @(Get-CimInstance -ClassName SoftwareLicensingProduct -Filter $Filter | Select-Object -Property ID,
        ApplicationID, Name, Description, PartialProductKey, ProductKeyChannel, LicenseStatus,
        GracePeriodRemaining, OfflineInstallationId, LicenseIsAddon, IsKeyManagementServiceMachine,
        KeyManagementServiceCurrentCount, RequiredClientCount, KeyManagementServiceTotalRequests,
        KeyManagementServiceFailedRequests, KeyManagementServiceUnlicensedRequests,
        KeyManagementServiceLicensedRequests, KeyManagementServiceOOBGraceRequests,
        KeyManagementServiceOOTGraceRequests, KeyManagementServiceNonGenuineGraceRequests,
        KeyManagementServiceNotificationRequests)
}

# The product a key was installed on: keyed, not an add-on (Windows), or the SKU itself (Office).
function Get-KmsconfKeyedProduct([string]$Filter) {
    $found = @(Get-CimInstance -ClassName SoftwareLicensingProduct -Filter $Filter |
        Where-Object { $_.PartialProductKey -and -not $_.LicenseIsAddon })
    if ($found.Count -eq 0) { throw '0xC004F014 no product key is installed for this product' }
    $found[0]
}

# The registry values of the KMS settings ($SettingRegistryValues), $null where absent.
function Get-KmsconfRegistry {
    $values = Get-ItemProperty -Path $SppKey -ErrorAction SilentlyContinue
    $registry = [ordered]@{}
    foreach ($name in $SettingRegistryValues) {
        $registry[$name] = $null
        if ($null -ne $values -and $values.PSObject.Properties[$name]) { $registry[$name] = $values.$name }
    }
    $registry
}

function Get-KmsconfFirewallRules {
    $rules = @()
    foreach ($name in $RuleNames) { $rules += @(Get-NetFirewallRule -Name $name -ErrorAction SilentlyContinue) }
    foreach ($group in $RuleGroups) { $rules += @(Get-NetFirewallRule -Group $group -ErrorAction SilentlyContinue) }
    @($rules | ForEach-Object {
        $port = $_ | Get-NetFirewallPortFilter
        $address = $_ | Get-NetFirewallAddressFilter
        [ordered]@{
            Name = $_.Name
            Group = $_.Group
            Direction = [string]$_.Direction
            Enabled = [string]$_.Enabled
            Profile = [string]$_.Profile
            Protocol = [string]$port.Protocol
            LocalPort = [string[]]@($port.LocalPort)
            RemoteAddress = [string[]]@($address.RemoteAddress)
        }
    })
}

function Invoke-KmsconfOp([int]$Index, [scriptblock]$Body) {
    Send-Kmsconf 'begin' ([ordered]@{ Index = $Index })
    try {
        $readBack = @(& $Body)
        $last = if ($readBack.Count -gt 0) { $readBack[-1] } else { $null }
        Send-Kmsconf 'result' ([ordered]@{ Index = $Index; Ok = $true; ReadBack = $last })
    } catch {
        Send-Kmsconf 'result' ([ordered]@{ Index = $Index; Ok = $false; HResult = (Get-KmsconfHResult $_); Message = $_.Exception.Message })
    }
}

$RuleNames = @('kmsconf-KMS-Port-In-TCP')
$RuleGroups = @('@FirewallAPI.dll,-28002', '@FirewallAPI.dll,-28502')
$ProductFilter = 'PartialProductKey IS NOT NULL OR ID = ''bfe7a195-4f8f-4f0b-a622-cf13c7d16864'' OR ID = ''2e28138a-847f-42bc-9752-61b03fff33cd'' OR ID = ''98ebfe73-2084-4c97-932c-c0cd1643bea7'' OR ID = ''70512334-47b4-44db-a233-be5ea33b914c'' OR ID = ''47f3b983-7c53-4d45-abc6-bcd91e2dd90a'' OR ID = ''f3d89bbf-c0ec-47ce-a8fa-e5a5f97e447f'''
$SettingProperties = @('KeyManagementServiceListeningPort', 'KeyManagementServiceDnsPublishing', 'KeyManagementServiceLowPriority', 'VLActivationInterval', 'VLRenewalInterval', 'KeyManagementServiceHostCaching')
$SettingRegistryValues = @('KeyManagementServiceListeningPort', 'DisableDnsPublishing', 'DnsDomainPublishList', 'EnableKmsLowPriority')

# service: clear the KMS listening port
Invoke-KmsconfOp 0 {
    Invoke-KmsconfMethod (Get-CimInstance -ClassName SoftwareLicensingService) 'ClearKeyManagementServiceListeningPort'
    [ordered]@{ Service = Get-KmsconfService; Registry = Get-KmsconfRegistry }
}

# office-2019: uninstall the key of SKU 70512334-47b4-44db-a233-be5ea33b914c
Invoke-KmsconfOp 1 {
    $version = [string](Get-CimInstance -ClassName SoftwareLicensingService).Version
    $product = @(Get-CimInstance -ClassName SoftwareLicensingProduct -Filter "ID = '70512334-47b4-44db-a233-be5ea33b914c' AND PartialProductKey IS NOT NULL")
    if ($product.Count -eq 0) { throw '0xC004F014 no product key is installed on SKU 70512334-47b4-44db-a233-be5ea33b914c' }
    Invoke-KmsconfMethod $product[0] 'UninstallProductKey'
    Invoke-KmsconfMethod (Get-CimInstance -ClassName SoftwareLicensingService) 'RefreshLicenseStatus'
    Set-KmsconfKmsVersion $version
    [ordered]@{ Products = Get-KmsconfProducts "ID = '70512334-47b4-44db-a233-be5ea33b914c'" }
}

# windows: install the KMS client key *****-*****-*****-*****-6VM33
Invoke-KmsconfOp 2 {
    $svc = Get-CimInstance -ClassName SoftwareLicensingService
    $version = [string]$svc.Version
    Invoke-KmsconfMethod $svc 'InstallProductKey' @{ ProductKey = [string]$Request.secrets.'2' }
    Invoke-KmsconfMethod (Get-CimInstance -ClassName SoftwareLicensingService) 'RefreshLicenseStatus'
    Set-KmsconfKmsVersion $version
    [ordered]@{ Products = Get-KmsconfProducts 'ApplicationID = ''55c92734-d682-4d71-983e-d6ec3f16059f'' AND PartialProductKey IS NOT NULL' }
}
