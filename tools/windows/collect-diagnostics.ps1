#Requires -RunAsAdministrator
<#
.SYNOPSIS
Collects what is needed to diagnose a ringside install into one folder and a .zip.

.DESCRIPTION
Saves fltmc filters and instances, sc qc / sc query for ringside and
RingsideAgent, the service's Parameters key, verifier /querysettings,
the driver-store entry (pnputil /enum-drivers) and the newest agent log
files. Safe to run repeatedly: each run writes a new timestamped folder.

.PARAMETER OutputDirectory
Where the timestamped folder and .zip are written.

.PARAMETER AgentLogDirectory
Where ringside-agent writes its logs.

.PARAMETER LogFileCount
How many of the newest agent log files to copy.

.EXAMPLE
.\collect-diagnostics.ps1 -OutputDirectory C:\ringside-diag
#>
[CmdletBinding()]
param(
    [string]$OutputDirectory = (Join-Path $env:TEMP 'ringside-diagnostics'),
    [string]$AgentLogDirectory = (Join-Path $env:ProgramData 'ringside\logs'),
    [int]$LogFileCount = 5
)
$ErrorActionPreference = 'Continue'

$stamp = Get-Date -Format 'yyyyMMdd-HHmmss'
$dir = Join-Path $OutputDirectory "ringside-$stamp"
New-Item -ItemType Directory -Path $dir -Force | Out-Null

function Save-Output {
    param([string]$Name, [scriptblock]$Command)
    $path = Join-Path $dir $Name
    try { & $Command *>&1 | Out-File -FilePath $path -Encoding utf8 }
    catch { "failed: $_" | Out-File -FilePath $path -Encoding utf8 }
}

Save-Output 'fltmc-filters.txt' { fltmc.exe filters }
Save-Output 'fltmc-instances.txt' { fltmc.exe instances -f ringside }
Save-Output 'sc-qc-ringside.txt' { sc.exe qc ringside }
Save-Output 'sc-query-ringside.txt' { sc.exe query ringside }
Save-Output 'sc-qc-RingsideAgent.txt' { sc.exe qc RingsideAgent }
Save-Output 'sc-query-RingsideAgent.txt' { sc.exe query RingsideAgent }
Save-Output 'parameters.txt' { reg.exe query 'HKLM\SYSTEM\CurrentControlSet\Services\ringside' /s }
Save-Output 'verifier-querysettings.txt' { verifier.exe /querysettings }
Save-Output 'pnputil-enum-drivers.txt' { pnputil.exe /enum-drivers }
Save-Output 'bcdedit.txt' { bcdedit.exe /enum '{current}' }

if (Test-Path $AgentLogDirectory) {
    $logs = Join-Path $dir 'agent-logs'
    New-Item -ItemType Directory -Path $logs -Force | Out-Null
    Get-ChildItem -Path $AgentLogDirectory -File | Sort-Object LastWriteTime -Descending |
        Select-Object -First $LogFileCount | Copy-Item -Destination $logs
} else {
    "No agent log directory at $AgentLogDirectory" | Out-File -FilePath (Join-Path $dir 'agent-logs.txt') -Encoding utf8
}

$zip = "$dir.zip"
Compress-Archive -Path $dir -DestinationPath $zip -Force
Write-Output "Diagnostics: $dir"
Write-Output "Archive:     $zip"
