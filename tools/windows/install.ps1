#Requires -RunAsAdministrator
<#
.SYNOPSIS
Installs and loads ringside.sys from a package directory (docs/windows-vm.md, steps 3-4).

.DESCRIPTION
Trusts the package's test certificate (Root and TrustedPublisher), stages
ringside.inf with pnputil /add-driver /install and loads the minifilter with
fltmc load ringside. Idempotent: an already trusted certificate, an already
installed service or an already loaded filter is reported and skipped.

.PARAMETER PackageDirectory
The directory holding ringside.inf, ringside.sys, ringside.cat and ringside.cer.

.PARAMETER NoLoad
Install only; do not run fltmc load ringside.

.EXAMPLE
.\install.ps1 -PackageDirectory C:\ringside
#>
[CmdletBinding()]
param(
    [string]$PackageDirectory = 'C:\ringside',
    [switch]$NoLoad
)
$ErrorActionPreference = 'Stop'

$inf = Join-Path $PackageDirectory 'ringside.inf'
$cer = Join-Path $PackageDirectory 'ringside.cer'
if (-not (Test-Path $inf)) { throw "No ringside.inf in $PackageDirectory (build it with: cargo xtask package --sign, then cargo make sign on Windows)." }

if (Test-Path $cer) {
    $thumbprint = (New-Object System.Security.Cryptography.X509Certificates.X509Certificate2 $cer).Thumbprint
    foreach ($store in 'Root', 'TrustedPublisher') {
        if (Test-Path "Cert:\LocalMachine\$store\$thumbprint") {
            Write-Output "Certificate $thumbprint is already in LocalMachine\$store."
        } else {
            Import-Certificate -FilePath $cer -CertStoreLocation "Cert:\LocalMachine\$store" | Out-Null
            Write-Output "Imported ringside.cer into LocalMachine\$store."
        }
    }
} else {
    Write-Warning "No ringside.cer in $PackageDirectory: assuming the signing certificate is already trusted."
}

if (Get-Service -Name 'ringside' -ErrorAction SilentlyContinue) {
    Write-Output 'The ringside service is already installed; skipping pnputil /add-driver.'
} else {
    & pnputil.exe /add-driver $inf /install
    if ($LASTEXITCODE -ne 0) { throw "pnputil /add-driver $inf /install failed ($LASTEXITCODE)." }
}

if (-not $NoLoad) {
    $loaded = (& fltmc.exe filters) -match '^\s*ringside\s'
    if ($loaded) {
        Write-Output 'The ringside filter is already loaded.'
    } else {
        & fltmc.exe load ringside
        if ($LASTEXITCODE -ne 0) { throw "fltmc load ringside failed ($LASTEXITCODE); see collect-diagnostics.ps1." }
        Write-Output 'Loaded ringside.'
    }
    & fltmc.exe instances -f ringside
}
