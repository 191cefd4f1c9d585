# kmsconf's tables (from its data files and its table of KMS settings)
$RuleNames = @('kmsconf-KMS-Port-In-TCP')
$RuleGroups = @('@FirewallAPI.dll,-28002', '@FirewallAPI.dll,-28502')
$ProductFilter = 'PartialProductKey IS NOT NULL OR ID = ''bfe7a195-4f8f-4f0b-a622-cf13c7d16864'' OR ID = ''2e28138a-847f-42bc-9752-61b03fff33cd'' OR ID = ''98ebfe73-2084-4c97-932c-c0cd1643bea7'' OR ID = ''70512334-47b4-44db-a233-be5ea33b914c'' OR ID = ''47f3b983-7c53-4d45-abc6-bcd91e2dd90a'' OR ID = ''f3d89bbf-c0ec-47ce-a8fa-e5a5f97e447f'''
$SettingProperties = @('KeyManagementServiceListeningPort', 'KeyManagementServiceDnsPublishing', 'KeyManagementServiceLowPriority', 'VLActivationInterval', 'VLRenewalInterval', 'KeyManagementServiceHostCaching')
$SettingRegistryValues = @('KeyManagementServiceListeningPort', 'DisableDnsPublishing', 'DnsDomainPublishList', 'EnableKmsLowPriority', 'VLActivationInterval', 'VLRenewalInterval')
$SettingRegistryKeys = @('spp', 'spp', 'spp', 'spp', 'spp', 'spp')
$FactRegistryValues = @('KeyManagementServiceListeningPort', 'DisableDnsPublishing', 'EnableKmsLowPriority', 'DnsDomainPublishList', 'VLActivationInterval', 'VLRenewalInterval', 'KeyManagementServiceVersion')
# kmsconf agent: starts once per host and per run, reads requests from standard input (one JSON
# object per line: `id`, `op` and the operation's arguments, secrets included) until the input
# ends, and answers each with lines `KMSCONF:<kind>:<base64 of UTF-8 JSON>`: `begin` when it
# starts a request, then one answer `{ Id, Ok, HResult, Message, Answer }`. Nothing a request
# carries ever becomes PowerShell source: each operation is one function below, reading its
# arguments from the request object. It reads only CIM objects, registry values and NetSecurity
# cmdlets (never slmgr.vbs's localized text), selecting only the properties kmsconf uses.
Set-StrictMode -Version 2.0
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$SppKey = 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion\SoftwareProtectionPlatform'
$SppKey32 = 'HKLM:\SOFTWARE\Wow6432Node\Microsoft\Windows NT\CurrentVersion\SoftwareProtectionPlatform'
$LockDir = Join-Path $env:ProgramData 'kmsconf'
$LockPath = Join-Path $LockDir 'apply.lock'
$ServiceProperties = @('Version', 'IsKeyManagementServiceMachine', 'KeyManagementServiceCurrentCount',
    'RequiredClientCount', 'KeyManagementServiceTotalRequests', 'KeyManagementServiceFailedRequests',
    'KeyManagementServiceUnlicensedRequests', 'KeyManagementServiceLicensedRequests',
    'KeyManagementServiceOOBGraceRequests', 'KeyManagementServiceOOTGraceRequests',
    'KeyManagementServiceNonGenuineGraceRequests', 'KeyManagementServiceNotificationRequests',
    'ClientMachineID', 'RemainingWindowsReArmCount') + $SettingProperties
$ProductProperties = @('ID', 'ApplicationID', 'Name', 'Description', 'PartialProductKey',
    'ProductKeyChannel', 'LicenseStatus', 'GracePeriodRemaining', 'OfflineInstallationId',
    'LicenseIsAddon', 'IsKeyManagementServiceMachine', 'KeyManagementServiceCurrentCount',
    'RequiredClientCount', 'KeyManagementServiceTotalRequests', 'KeyManagementServiceFailedRequests',
    'KeyManagementServiceUnlicensedRequests', 'KeyManagementServiceLicensedRequests',
    'KeyManagementServiceOOBGraceRequests', 'KeyManagementServiceOOTGraceRequests',
    'KeyManagementServiceNonGenuineGraceRequests', 'KeyManagementServiceNotificationRequests')

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
    $kmsHosts = @(Get-CimInstance -ClassName SoftwareLicensingProduct -Filter 'PartialProductKey IS NOT NULL' -Property Description |
        Where-Object { [string]$_.Description -match 'VOLUME_KMS' -and [string]$_.Description -notmatch 'VOLUME_KMSCLIENT' })
    foreach ($key in @($SppKey, $SppKey32)) {
        if (-not (Test-Path -LiteralPath $key)) { continue }
        if ($kmsHosts.Count -gt 0) { New-ItemProperty -Path $key -Name 'KeyManagementServiceVersion' -PropertyType String -Value $Version -Force | Out-Null }
        else { Remove-ItemProperty -Path $key -Name 'KeyManagementServiceVersion' -ErrorAction SilentlyContinue }
    }
}

function Get-KmsconfLicensingService {
    Get-CimInstance -ClassName SoftwareLicensingService -Property $ServiceProperties
}

function Update-KmsconfLicenseStatus {
    Invoke-KmsconfMethod (Get-KmsconfLicensingService) 'RefreshLicenseStatus'
}

# What kmsconf reads of products: the properties it uses, as plain objects.
function ConvertTo-KmsconfProduct {
    process { $_ | Select-Object -Property $ProductProperties }
}

# One WQL query for the products `$Filter` selects, with only the properties kmsconf uses.
function Get-KmsconfProducts([string]$Filter) {
    @(Get-CimInstance -ClassName SoftwareLicensingProduct -Filter $Filter -Property $ProductProperties)
}

# The WQL filter for a request's product: its SKU by activation ID (Office), or the keyed
# products of its application (Windows). The IDs are parsed as GUIDs, so no text reaches the query.
function Get-KmsconfProductFilter($Request) {
    if ($null -ne $Request.activation_id) {
        return ("ID = '{0}'" -f ([guid][string]$Request.activation_id).ToString())
    }
    "ApplicationID = '{0}' AND PartialProductKey IS NOT NULL" -f ([guid][string]$Request.application_id).ToString()
}

# The product a key was installed on: keyed, not an add-on (Windows), or the SKU itself (Office).
function Get-KmsconfKeyedProduct($Request) {
    $found = @(Get-KmsconfProducts (Get-KmsconfProductFilter $Request) |
        Where-Object { $_.PartialProductKey -and -not $_.LicenseIsAddon })
    if ($found.Count -eq 0) { throw '0xC004F014 no product key is installed for this product' }
    $found[0]
}

function Read-KmsconfProducts($Request) {
    [ordered]@{ Products = @(Get-KmsconfProducts (Get-KmsconfProductFilter $Request) | ConvertTo-KmsconfProduct) }
}

# The KMS settings' properties ($SettingProperties, from kmsconf's table of settings) and the
# service's own.
function Get-KmsconfService {
    Get-KmsconfLicensingService | Select-Object -Property $ServiceProperties
}

# The registry keys values are read under, by the facts table's names for them (`sl`: the
# Volume Activation 2.0 guide's key for the intervals).
$RegistryKeys = [ordered]@{
    spp = $SppKey
    spp32 = $SppKey32
    sl = 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion\SL'
}

# The registry values of the KMS settings ($SettingRegistryValues, each under its key of
# $SettingRegistryKeys), $null where absent.
function Get-KmsconfRegistry {
    $registry = [ordered]@{}
    for ($i = 0; $i -lt @($SettingRegistryValues).Count; $i++) {
        $name = @($SettingRegistryValues)[$i]
        $registry[$name] = $null
        $values = Get-ItemProperty -Path $RegistryKeys[[string]@($SettingRegistryKeys)[$i]] -ErrorAction SilentlyContinue
        if ($null -ne $values -and $values.PSObject.Properties[$name]) { $registry[$name] = $values.$name }
    }
    $registry
}

# The message of a failure, with its PowerShell category when that is ObjectNotFound (what
# `Set-NetFirewallRule -Name RULE` gives for a rule the host lacks: a cmdletization error with no
# HRESULT, whose text is localized but whose category is not).
function Get-KmsconfMessage($ErrorRecord) {
    $message = $ErrorRecord.Exception.Message
    if ([string]$ErrorRecord.CategoryInfo.Category -eq 'ObjectNotFound') { return ('{0} (ObjectNotFound)' -f $message) }
    $message
}

function Read-KmsconfService {
    [ordered]@{ Service = Get-KmsconfService; Registry = Get-KmsconfRegistry }
}

function Get-KmsconfFirewallRules {
    $rules = @()
    foreach ($name in $RuleNames) { $rules += @(Get-NetFirewallRule -Name $name -ErrorAction SilentlyContinue) }
    # inbound only: kmsconf never reads or changes a group's outbound rules
    foreach ($group in $RuleGroups) { $rules += @(Get-NetFirewallRule -Group $group -Direction Inbound -ErrorAction SilentlyContinue) }
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

function Read-KmsconfFirewall {
    [ordered]@{ FirewallRules = Get-KmsconfFirewallRules }
}

# A remote address scope: `Any` for none.
function Get-KmsconfScope($Addresses) {
    $list = [string[]]@($Addresses)
    if ($list.Count -eq 0) { return 'Any' }
    $list
}

# Firewall profiles as the NetSecurity `Profile` flags take them: `Domain, Private`.
function Get-KmsconfProfiles($Profiles) {
    $list = [string[]]@($Profiles)
    if ($list.Count -eq 0) { throw 'no firewall profile to set' }
    $list -join ', '
}

# What the host shows of the Windows facts kmsconf assumes without a source to confirm them
# (data/windows.toml, verified = false), for kmsconf to compare before any change: the PowerShell
# the agent runs in, whether SoftwareLicensingProduct has ProductKeyChannel, and the type of each
# registry value the table names ($FactRegistryValues) under every key it may be in.
function Get-KmsconfReadings {
    $registry = @()
    foreach ($key in @($RegistryKeys.Keys)) {
        $item = Get-Item -LiteralPath $RegistryKeys[$key] -ErrorAction SilentlyContinue
        if ($null -eq $item) { continue }
        $present = @($item.GetValueNames())
        foreach ($name in @($FactRegistryValues)) {
            if ($present -contains $name) {
                $registry += [ordered]@{ Key = $key; Name = $name; Type = [string]$item.GetValueKind($name) }
            }
        }
    }
    $class = Get-CimClass -ClassName SoftwareLicensingProduct
    [ordered]@{
        PowerShellVersion = [string]$PSVersionTable.PSVersion
        LanguageMode = [string]$ExecutionContext.SessionState.LanguageMode
        ProductKeyChannel = ($null -ne $class.CimClassProperties['ProductKeyChannel'])
        Registry = $registry
    }
}

# --- the operations: one function each, taking the request, returning what it read back ------

# Everything kmsconf manages, plus counters and the clock.
# Windows 7 / Server 2008 R2 and older (6.1 and below) are refused before any product query: their
# SoftwareLicensingProduct has no ProductKeyChannel, and the Windows 8 slmgr.vbs refuses them too.
function Invoke-KmsconfDiscover($Request) {
    $os = Get-CimInstance -ClassName Win32_OperatingSystem -Property 'Caption', 'Version', 'BuildNumber', 'OperatingSystemSKU' | Select-Object -Property 'Caption', 'Version', 'BuildNumber', 'OperatingSystemSKU'
    if ([version]$os.Version -lt [version]'6.2') { throw ('kmsconf needs Windows 8 / Windows Server 2012 (version 6.2) or later, and this host runs {0} (version {1}), whose SoftwareLicensingProduct class has no ProductKeyChannel' -f $os.Caption, $os.Version) }
    $readings = Get-KmsconfReadings
    # a class without the property would fail every product query: read the others (this local
    # list shadows the agent's for the functions called from here), and let kmsconf report the
    # surprise (the channel then comes from the Description)
    if (-not $readings.ProductKeyChannel) { $ProductProperties = @($ProductProperties | Where-Object { $_ -ne 'ProductKeyChannel' }) }
    [ordered]@{
        ComputerName = $env:COMPUTERNAME
        OperatingSystem = $os
        SoftwareLicensingService = Get-KmsconfService
        SoftwareLicensingProduct = @(Get-KmsconfProducts $ProductFilter | ConvertTo-KmsconfProduct)
        SoftwareProtectionPlatform = Get-KmsconfRegistry
        FirewallRules = Get-KmsconfFirewallRules
        Readings = $readings
        Clock = [ordered]@{
            Utc = [DateTime]::UtcNow.ToString('o')
            TimeZone = [TimeZoneInfo]::Local.Id
            UtcOffsetMinutes = [int][TimeZoneInfo]::Local.GetUtcOffset([DateTime]::Now).TotalMinutes
        }
    }
}

# Takes kmsconf's apply lock on this host: a file created with CreateNew (which fails when it
# exists, atomically), holding the holder's record. A run that dies leaves the file behind;
# `kmsconf force-unlock HOST LOCK_ID` removes it.
function Invoke-KmsconfLock($Request) {
    New-Item -ItemType Directory -Force -Path $LockDir | Out-Null
    $stream = $null
    try {
        $stream = [IO.File]::Open($LockPath, [IO.FileMode]::CreateNew, [IO.FileAccess]::Write, [IO.FileShare]::None)
    } catch {
        if (-not (Test-Path -LiteralPath $LockPath)) { throw }
    }
    if ($null -eq $stream) {
        return [ordered]@{ Acquired = $false; Holder = [IO.File]::ReadAllText($LockPath) }
    }
    try {
        $bytes = [Text.Encoding]::UTF8.GetBytes([string]$Request.holder)
        $stream.Write($bytes, 0, $bytes.Length)
    } finally {
        $stream.Close()
    }
    [ordered]@{ Acquired = $true; Holder = $null }
}

# Releases the apply lock if its record carries the request's lock ID; otherwise reports the
# record that is there (or that there is none).
function Invoke-KmsconfUnlock($Request) {
    if (-not (Test-Path -LiteralPath $LockPath)) {
        return [ordered]@{ Released = $false; Holder = $null }
    }
    $current = [IO.File]::ReadAllText($LockPath)
    $id = $null
    try { $id = ($current | ConvertFrom-Json).id } catch { $id = $null }
    if ($id -ne [string]$Request.lock_id) {
        return [ordered]@{ Released = $false; Holder = $current }
    }
    Remove-Item -LiteralPath $LockPath -Force
    [ordered]@{ Released = $true; Holder = $current }
}

# Installs the license files of the pack at the request's path: a folder's own `.xrm-ms` files
# (not its subfolders), each as `slmgr /ilc` installs one file, or one file. (Only `/rilc` walks
# folders, and only system32\oem and spp\tokens.) A pack that keeps one folder per host OS (the
# Office 2010 KMS host pack: `win2k3`, `win7`, `win8`), whose own kms_host.vbs installs `win7` on
# Windows 6.1 and `win8` on 6.2 and later, is refused naming the folder for this host.
function Invoke-KmsconfInstallLicensePack($Request) {
    $path = [string]$Request.path
    if (Test-Path -LiteralPath $path -PathType Container) { $files = @(Get-ChildItem -LiteralPath $path -Filter '*.xrm-ms' -File) }
    elseif (Test-Path -LiteralPath $path -PathType Leaf) { $files = @(Get-Item -LiteralPath $path) }
    else { throw ('0x80070002 license pack {0} does not exist on the host' -f $path) }
    if ($files.Count -eq 0) {
        $perOs = @(Get-ChildItem -LiteralPath $path -Directory -ErrorAction SilentlyContinue |
            Where-Object { @(Get-ChildItem -LiteralPath $_.FullName -Filter '*.xrm-ms' -File).Count -gt 0 } |
            ForEach-Object { $_.Name })
        if ($perOs.Count -gt 0) {
            $v = [Environment]::OSVersion.Version
            $folder = if ($v.Major -gt 6 -or ($v.Major -eq 6 -and $v.Minor -ge 2)) { 'win8' } elseif ($v.Major -eq 6 -and $v.Minor -eq 1) { 'win7' } else { $null }
            if ($null -eq $folder) { throw ('0x80070002 license pack {0} keeps its license files in one folder per host OS ({1}), and none is for Windows {2}' -f $path, ($perOs -join ', '), $v) }
            throw ('0x80070002 license pack {0} keeps its license files in one folder per host OS ({1}): set license_pack to its `{2}` folder, the one the pack''s kms_host.vbs picks for Windows {3}.{4}' -f $path, ($perOs -join ', '), $folder, $v.Major, $v.Minor)
        }
        throw ('0x80070002 license pack {0} holds no .xrm-ms license files' -f $path)
    }
    $svc = Get-KmsconfLicensingService
    foreach ($file in $files) {
        if ($file.Extension -ne '.xrm-ms') { throw ('{0} is not a license file (.xrm-ms): run the pack on the host once, or point license_pack at the license files it installs' -f $file.Name) }
        Invoke-KmsconfMethod $svc 'InstallLicense' @{ License = [IO.File]::ReadAllText($file.FullName) }
    }
    Update-KmsconfLicenseStatus
    Read-KmsconfProducts $Request
}

# Installs the key, then keeps KeyManagementServiceVersion as slmgr.vbs /ipk does.
function Invoke-KmsconfInstallProductKey($Request) {
    $svc = Get-KmsconfLicensingService
    $version = [string]$svc.Version
    Invoke-KmsconfMethod $svc 'InstallProductKey' @{ ProductKey = [string]$Request.key }
    Update-KmsconfLicenseStatus
    Set-KmsconfKmsVersion $version
    Read-KmsconfProducts $Request
}

# slmgr.vbs /upk <activation ID>: UninstallProductKey on the keyed product of that SKU (never
# the form without one), then the license status refreshed and KeyManagementServiceVersion kept
# as slmgr.vbs keeps it (gone once no KMS host product is left). The ID is parsed as a GUID, so
# no text of the request reaches the query. Reads back that SKU.
function Invoke-KmsconfUninstallProductKey($Request) {
    $id = $null
    try { $id = ([guid][string]$Request.activation_id).ToString() }
    catch { throw ('0x80070057 the activation ID {0} is not a GUID' -f $Request.activation_id) }
    $svc = Get-KmsconfLicensingService
    $version = [string]$svc.Version
    $found = @(Get-KmsconfProducts ("ID = '{0}' AND PartialProductKey IS NOT NULL" -f $id))
    if ($found.Count -eq 0) { throw ('0xC004F014 no product key is installed on SKU {0}' -f $id) }
    $product = $found[0]
    Invoke-KmsconfMethod $product 'UninstallProductKey'
    Update-KmsconfLicenseStatus
    Set-KmsconfKmsVersion $version
    [ordered]@{ Products = @(Get-KmsconfProducts ("ID = '{0}'" -f $id) | ConvertTo-KmsconfProduct) }
}

# Calls a method on the product's keyed instance, then reads that instance again by its key
# (one query per operation).
function Invoke-KmsconfProductMethod($Request, [string]$Method, [hashtable]$Arguments) {
    $product = Get-KmsconfKeyedProduct $Request
    Invoke-KmsconfMethod $product $Method $Arguments
    Update-KmsconfLicenseStatus
    [ordered]@{ Products = @(Get-CimInstance -InputObject $product | ConvertTo-KmsconfProduct) }
}

function Invoke-KmsconfActivateOnline($Request) {
    Invoke-KmsconfProductMethod $Request 'Activate' @{}
}

function Invoke-KmsconfShowInstallationId($Request) {
    Read-KmsconfProducts $Request
}

function Invoke-KmsconfDepositConfirmationId($Request) {
    $product = Get-KmsconfKeyedProduct $Request
    $arguments = @{ InstallationId = $product.OfflineInstallationId; ConfirmationId = [string]$Request.confirmation_id }
    Invoke-KmsconfMethod $product 'DepositOfflineConfirmationId' $arguments
    Update-KmsconfLicenseStatus
    [ordered]@{ Products = @(Get-CimInstance -InputObject $product | ConvertTo-KmsconfProduct) }
}

# A CIM method argument of the type the request names.
function ConvertTo-KmsconfArgument($Value, [string]$Type) {
    switch ($Type) {
        'uint32' { return [uint32]$Value }
        'bool' { return [bool]$Value }
        'string[]' { return [string[]]@($Value) }
    }
    throw ('unknown argument type {0}' -f $Type)
}

# Sets one KMS setting as its row in kmsconf's table says: a SoftwareLicensingService method
# and its argument, or a registry value (absent data removes it).
function Invoke-KmsconfSetService($Request) {
    $method = $Request.method
    $registry = $Request.registry
    if ($null -ne $method) {
        $value = ConvertTo-KmsconfArgument $method.value ([string]$method.type)
        Invoke-KmsconfMethod (Get-KmsconfLicensingService) ([string]$method.name) @{ ([string]$method.argument) = $value }
    } elseif ($null -eq $registry.data) {
        Remove-ItemProperty -Path $SppKey -Name ([string]$registry.name) -ErrorAction SilentlyContinue
    } else {
        $data = switch ([string]$registry.type) {
            'MultiString' { [string[]]@($registry.data) }
            'String' { [string](@($registry.data) -join '') }
            'DWord' { [uint32](@($registry.data) -join '') }
            default { throw ('unknown registry type {0}' -f $registry.type) }
        }
        New-ItemProperty -Path $SppKey -Name ([string]$registry.name) -PropertyType ([string]$registry.type) -Value $data -Force | Out-Null
    }
    Read-KmsconfService
}

# ClearKeyManagementServiceListeningPort: the KMS host listens on the default port, 1688, once
# the service restarts (the plan's restart follows).
function Invoke-KmsconfClearListeningPort($Request) {
    Invoke-KmsconfMethod (Get-KmsconfLicensingService) 'ClearKeyManagementServiceListeningPort'
    Read-KmsconfService
}

function Invoke-KmsconfRestartService($Request) {
    Restart-Service -Name sppsvc -Force -WarningAction SilentlyContinue
    Read-KmsconfService
}

# Enables or disables a group kmsconf manages whole, its inbound rules found by the group's
# resource string; its rules keep their profiles and scope.
function Invoke-KmsconfSetRuleGroup($Request) {
    $rules = @(Get-NetFirewallRule -Group ([string]$Request.resource) -Direction Inbound -ErrorAction SilentlyContinue)
    if ($rules.Count -eq 0) { throw ('the host has none of the built-in rules of the {0} group' -f $Request.display_name) }
    $enabled = if ($Request.enabled) { 'True' } else { 'False' }
    $rules | Set-NetFirewallRule -Enabled $enabled
    Read-KmsconfFirewall
}

# One built-in rule by its locale-independent Name: enabled on the request's profiles (and
# scoped when it carries remote addresses; without them the rule keeps its own scope), or
# disabled.
function Invoke-KmsconfSetFirewallRule($Request) {
    $name = [string]$Request.rule
    if (-not $Request.enabled) {
        Set-NetFirewallRule -Name $name -Enabled False
    } elseif ($null -eq $Request.remote_addresses) {
        Set-NetFirewallRule -Name $name -Enabled True -Profile (Get-KmsconfProfiles $Request.profiles)
    } else {
        Set-NetFirewallRule -Name $name -Enabled True -Profile (Get-KmsconfProfiles $Request.profiles) -RemoteAddress (Get-KmsconfScope $Request.remote_addresses)
    }
    Read-KmsconfFirewall
}

# Sets kmsconf's own rule for the KMS port on the request's profiles, creating it if it is not
# there.
function Invoke-KmsconfSetPortRule($Request) {
    $name = [string]$Request.name
    $port = [uint16]$Request.port
    $scope = Get-KmsconfScope $Request.remote_addresses
    $profiles = Get-KmsconfProfiles $Request.profiles
    $rule = Get-NetFirewallRule -Name $name -ErrorAction SilentlyContinue
    if ($null -ne $rule) {
        $rule | Set-NetFirewallRule -Enabled True -Direction Inbound -Action Allow -Protocol TCP -LocalPort $port -RemoteAddress $scope -Profile $profiles
    } else {
        New-NetFirewallRule -Name $name -DisplayName 'kmsconf: KMS custom port (TCP-In)' -Enabled True -Direction Inbound -Action Allow -Protocol TCP -LocalPort $port -RemoteAddress $scope -Profile $profiles | Out-Null
    }
    Read-KmsconfFirewall
}

function Invoke-KmsconfRemovePortRule($Request) {
    Remove-NetFirewallRule -Name ([string]$Request.name) -ErrorAction SilentlyContinue
    Read-KmsconfFirewall
}

# The KMS host's events of the last window_seconds by its own clock: 12290 from the Key Management Service
# log, 12293 from the Application log (where Windows logs every KMS event but 12290), each newest
# first and at most max_events, and at most max_bytes of event data in all; and the Software
# Protection service's State and StartMode. The data go back as strings, untouched: kmsconf
# checks each field. A log with no matching event (or none at all) answers an empty list.
function Invoke-KmsconfReadKmsEvents($Request) {
    $window = [double]$Request.window_seconds
    if ($window -lt 1) { throw '0x80070057 window_seconds must be positive' }
    $since = [DateTime]::UtcNow.AddSeconds(-[Math]::Min($window, 3155695200))
    $max = [int64]$Request.max_events
    $cap = [int64]$Request.max_bytes
    if ($max -lt 1 -or $cap -lt 1) { throw '0x80070057 max_events and max_bytes must be positive' }
    $filters = @(
        @{ LogName = 'Key Management Service'; Id = 12290; StartTime = $since },
        @{ LogName = 'Application'; ProviderName = 'Microsoft-Windows-Security-Licensing-SLC'; Id = 12293; StartTime = $since })
    $events = New-Object System.Collections.ArrayList
    $bytes = 0
    $truncated = $false
    foreach ($filter in $filters) {
        $found = @(Get-WinEvent -FilterHashtable $filter -MaxEvents $max -ErrorAction SilentlyContinue)
        if ($found.Count -ge $max) { $truncated = $true }
        foreach ($e in $found) {
            $data = [string[]]@($e.Properties | ForEach-Object { [string]$_.Value })
            $size = 64
            foreach ($d in $data) { $size += $d.Length + 4 }
            if ($bytes + $size -gt $cap) { $truncated = $true; break }
            $bytes += $size
            [void]$events.Add([ordered]@{ Id = [int]$e.Id; Time = $e.TimeCreated.ToUniversalTime().ToString('o'); Properties = $data })
        }
    }
    $service = Get-CimInstance -ClassName Win32_Service -Filter "Name = 'sppsvc'" -Property 'Name', 'State', 'StartMode' |
        Select-Object -Property 'State', 'StartMode'
    [ordered]@{
        Clock = [DateTime]::UtcNow.ToString('o')
        Truncated = $truncated
        Service = $service
        Events = @($events)
    }
}

# slmgr.vbs /ad-activation-online KEY NAME: the licensing service activates the CSVLK online and
# creates the activation object NAME in this host's forest. Invoke-KmsconfMethod throws on a
# non-zero ReturnValue (the HRESULT); a WMI error's own HRESULT reaches the caller through
# Get-KmsconfHResult. The key is never part of the answer.
function Invoke-KmsconfAdActivationOnline($Request) {
    $name = [string]$Request.object_name
    $svc = Get-CimInstance -ClassName SoftwareLicensingService
    Invoke-KmsconfMethod $svc 'DoActiveDirectoryOnlineActivation' @{ ProductKey = [string]$Request.key; ActivationObjectName = $name }
    [ordered]@{ ActivationObject = $name }
}

# Invoke-KmsconfMethod for a method with an out parameter: the ReturnValue checked the same
# way, then the out parameter's value (a missing one is an error, never an empty answer).
function Invoke-KmsconfMethodOut($Instance, [string]$Method, [hashtable]$Arguments, [string]$Out) {
    $result = Invoke-CimMethod -InputObject $Instance -MethodName $Method -Arguments $Arguments
    $code = $null
    if ($null -ne $result -and $result.PSObject.Properties['ReturnValue']) { $code = $result.ReturnValue }
    if ($null -ne $code -and [uint32]$code -ne 0) {
        throw ('{0} returned 0x{1:X8}' -f $Method, [uint32]$code)
    }
    if ($null -eq $result -or -not $result.PSObject.Properties[$Out] -or [string]::IsNullOrEmpty([string]$result.$Out)) {
        throw ('{0} returned no {1}' -f $Method, $Out)
    }
    [string]$result.$Out
}

# slmgr.vbs /ad-activation-get-iid KEY: the forest's installation ID for phone activation of the
# activation object, generated from the CSVLK. It changes nothing (the OSLicense module's
# Get-ADLicenseInfo -ProductKey, the same operation, is read-only), so kmsconf also calls it while
# planning. The key is never part of the answer.
function Invoke-KmsconfAdActivationGetIid($Request) {
    $svc = Get-CimInstance -ClassName SoftwareLicensingService
    $iid = Invoke-KmsconfMethodOut $svc 'GenerateActiveDirectoryOfflineActivationId' @{ ProductKey = [string]$Request.key } 'InstallationID'
    [ordered]@{ InstallationId = $iid; ActivationObject = [string]$Request.object_name }
}

# slmgr.vbs /ad-activation-apply-cid KEY CID NAME: the licensing service checks the activation
# line's confirmation ID and creates the activation object NAME in this host's forest. Neither the
# key nor the confirmation ID is part of the answer.
function Invoke-KmsconfAdActivationApplyCid($Request) {
    $name = [string]$Request.object_name
    $svc = Get-CimInstance -ClassName SoftwareLicensingService
    Invoke-KmsconfMethod $svc 'DepositActiveDirectoryOfflineActivationConfirmation' @{ ProductKey = [string]$Request.key; ConfirmationID = [string]$Request.confirmation_id; ActivationObjectName = $name }
    [ordered]@{ ActivationObject = $name }
}

# The WinRM service's own settings from the WSMan: drive (locale-independent, unlike `winrm get`):
# MaxTimeoutms, the Service's AllowUnencrypted and Auth, the Shell's MaxShellsPerUser and
# IdleTimeout, and each listener's Transport, Port and Enabled. Values go back as the strings the
# drive shows: kmsconf checks each one.
function Invoke-KmsconfReadWinRmService($Request) {
    $root = 'WSMan:\localhost'
    $read = { param([string]$Path) [string](Get-Item -LiteralPath "$root\$Path" -ErrorAction Stop).Value }
    $listeners = New-Object System.Collections.ArrayList
    foreach ($container in @(Get-ChildItem -LiteralPath "$root\Listener" -ErrorAction Stop)) {
        $items = @{}
        foreach ($item in @(Get-ChildItem -LiteralPath $container.PSPath -ErrorAction Stop)) {
            $items[[string]$item.Name] = [string]$item.Value
        }
        [void]$listeners.Add([ordered]@{ Transport = $items['Transport']; Port = $items['Port']; Enabled = $items['Enabled'] })
    }
    [ordered]@{
        AllowUnencrypted = & $read 'Service\AllowUnencrypted'
        Basic = & $read 'Service\Auth\Basic'
        Kerberos = & $read 'Service\Auth\Kerberos'
        Negotiate = & $read 'Service\Auth\Negotiate'
        CredSSP = & $read 'Service\Auth\CredSSP'
        CbtHardeningLevel = & $read 'Service\Auth\CbtHardeningLevel'
        MaxTimeoutms = & $read 'MaxTimeoutms'
        MaxShellsPerUser = & $read 'Shell\MaxShellsPerUser'
        IdleTimeout = & $read 'Shell\IdleTimeout'
        Listeners = @($listeners)
    }
}

# --- the loop: each operation's answer kind and function ----------------------------------------

$Operations = @{
    'discover' = @('discovery', ${function:Invoke-KmsconfDiscover})
    'lock' = @('lock', ${function:Invoke-KmsconfLock})
    'unlock' = @('unlock', ${function:Invoke-KmsconfUnlock})
    'install_license_pack' = @('result', ${function:Invoke-KmsconfInstallLicensePack})
    'install_product_key' = @('result', ${function:Invoke-KmsconfInstallProductKey})
    'uninstall_product_key' = @('result', ${function:Invoke-KmsconfUninstallProductKey})
    'activate_online' = @('result', ${function:Invoke-KmsconfActivateOnline})
    'show_installation_id' = @('result', ${function:Invoke-KmsconfShowInstallationId})
    'deposit_confirmation_id' = @('result', ${function:Invoke-KmsconfDepositConfirmationId})
    'set_service' = @('result', ${function:Invoke-KmsconfSetService})
    'clear_listening_port' = @('result', ${function:Invoke-KmsconfClearListeningPort})
    'restart_service' = @('result', ${function:Invoke-KmsconfRestartService})
    'set_rule_group' = @('result', ${function:Invoke-KmsconfSetRuleGroup})
    'set_firewall_rule' = @('result', ${function:Invoke-KmsconfSetFirewallRule})
    'set_port_rule' = @('result', ${function:Invoke-KmsconfSetPortRule})
    'remove_port_rule' = @('result', ${function:Invoke-KmsconfRemovePortRule})
    'read_kms_events' = @('result', ${function:Invoke-KmsconfReadKmsEvents})
    'ad_activation_online' = @('result', ${function:Invoke-KmsconfAdActivationOnline})
    'ad_activation_get_iid' = @('result', ${function:Invoke-KmsconfAdActivationGetIid})
    'ad_activation_apply_cid' = @('result', ${function:Invoke-KmsconfAdActivationApplyCid})
    'read_winrm_service' = @('result', ${function:Invoke-KmsconfReadWinRmService})
}

while ($null -ne ($line = [Console]::In.ReadLine())) {
    if ($line.Trim().Length -eq 0) { continue }
    $id = $null
    try {
        $request = ConvertFrom-Json -InputObject $line
        $id = $request.id
        $operation = $Operations[[string]$request.op]
        if ($null -eq $operation) { throw ('unknown operation {0}' -f $request.op) }
    } catch {
        Send-Kmsconf 'error' ([ordered]@{ Id = $id; Ok = $false; HResult = $null; Message = $_.Exception.Message })
        continue
    }
    Send-Kmsconf 'begin' ([ordered]@{ Id = $id })
    try {
        $out = @(& $operation[1] $request)
        $answer = if ($out.Count -gt 0) { $out[-1] } else { $null }
        Send-Kmsconf $operation[0] ([ordered]@{ Id = $id; Ok = $true; HResult = $null; Message = $null; Answer = $answer })
    } catch {
        Send-Kmsconf $operation[0] ([ordered]@{ Id = $id; Ok = $false; HResult = (Get-KmsconfHResult $_); Message = (Get-KmsconfMessage $_) })
    }
}
