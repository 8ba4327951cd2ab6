#Requires -RunAsAdministrator
<#
.SYNOPSIS
Stops the agent, unloads ringside.sys and removes its package from the driver store (docs/windows-vm.md, step 6).

.DESCRIPTION
Stops the RingsideAgent service if present, runs fltmc unload ringside if
the filter is loaded, and deletes every driver-store package whose original
name is ringside.inf with pnputil /delete-driver oemNN.inf /uninstall.
Idempotent: when nothing is installed it says so and succeeds.

.PARAMETER KeepAgent
Do not stop the RingsideAgent service.

.EXAMPLE
.\uninstall.ps1
#>
[CmdletBinding()]
param(
    [switch]$KeepAgent
)
$ErrorActionPreference = 'Stop'

if (-not $KeepAgent) {
    $agent = Get-Service -Name 'RingsideAgent' -ErrorAction SilentlyContinue
    if ($agent -and $agent.Status -ne 'Stopped') {
        Stop-Service -Name 'RingsideAgent'
        Write-Output 'Stopped RingsideAgent.'
    }
}

if ((& fltmc.exe filters) -match '^\s*ringside\s') {
    & fltmc.exe unload ringside
    if ($LASTEXITCODE -ne 0) { throw "fltmc unload ringside failed ($LASTEXITCODE): is a consumer still connected to \\.\Ringside?" }
    Write-Output 'Unloaded ringside.'
} else {
    Write-Output 'The ringside filter is not loaded.'
}

# pnputil /enum-drivers prints blocks of "Published Name / Original Name / ..." lines.
$published = $null
$removed = 0
foreach ($line in (& pnputil.exe /enum-drivers)) {
    if ($line -match '^\s*Published Name\s*:\s*(\S+)') { $published = $Matches[1] }
    elseif ($line -match '^\s*Original Name\s*:\s*ringside\.inf\s*$' -and $published) {
        & pnputil.exe /delete-driver $published /uninstall
        if ($LASTEXITCODE -ne 0) { throw "pnputil /delete-driver $published /uninstall failed ($LASTEXITCODE)." }
        Write-Output "Removed $published (ringside.inf) from the driver store."
        $removed++
    }
}
if ($removed -eq 0) { Write-Output 'No ringside.inf package is in the driver store; nothing to remove.' }
