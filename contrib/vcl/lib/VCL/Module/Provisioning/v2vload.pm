#!/usr/bin/perl -w
###############################################################################
# VCL::Module::Provisioning::v2vload - a VCL provisioning module backed by
# v2v-load (libvirt + KVM, or plain QEMU/TCG where KVM does not work).
#
# For every subroutine it builds the reservation document (JSON) from VCL's
# data object and runs `v2v-load vcl <subroutine> --data -`, which prints one
# JSON object {"ok", "result", "error": {"code", "message"}} and exits 0 or 1.
#
# Configuration (environment of vcld), all optional:
#   V2V_LOAD_CLI            the v2v-load program (default: v2v-load on PATH);
#                           may hold arguments, split on blanks
#   V2V_LOAD_VMHOST_NODE    "local" or "ssh://user@host:port" (default:
#                           ssh://root@<vmhost hostname>:22)
#   V2V_LOAD_IDENTITY       SSH private key of the management node
#   V2V_LOAD_KNOWN_HOSTS    known_hosts file holding the VM hosts' keys
#   V2V_LOAD_LIBVIRT_URI    default qemu:///system
#   V2V_LOAD_DOMAIN_TYPE    kvm or qemu (default: the driver decides)
#   V2V_LOAD_READY_PATTERN  what the guest prints on its serial console when up
#                           (a JavaScript regular expression; default: a login prompt)
#   V2V_LOAD_READY_TIMEOUT  seconds load waits for it (default 600)
###############################################################################
package VCL::Module::Provisioning::v2vload;

use strict;
use warnings;
use IPC::Open3 qw(open3);
use JSON::PP ();
use Symbol qw(gensym);

our $VERSION = '0.1';

# Inside VCL the module is a VCL::Module::Provisioning (which gives new(),
# data() and the rest); outside it (tests), a minimal new() and data() stand in.
our $IN_VCL;
BEGIN {
	$IN_VCL = eval { require VCL::Module::Provisioning; 1 } ? 1 : 0;
	if ($IN_VCL) {
		our @ISA = ('VCL::Module::Provisioning');
		eval { require VCL::utils; VCL::utils->import(); 1 };
	}
	else {
		no strict 'refs';
		*{'VCL::Module::Provisioning::v2vload::new'} = sub {
			my ($class, $args) = @_;
			return bless {data => $args->{data_structure}}, $class;
		};
		*{'VCL::Module::Provisioning::v2vload::data'} = sub { return $_[0]->{data} };
	}
}

my $JSON = JSON::PP->new->canonical(1)->allow_nonref(1);

sub _notify {
	my ($level, $message) = @_;
	if ($IN_VCL && defined &VCL::utils::notify) {
		no strict 'refs';
		my %ERRORS = %{'VCL::utils::ERRORS'};
		VCL::utils::notify($ERRORS{$level} // 0, 0, $message);
	}
	elsif ($level ne 'DEBUG' || $ENV{V2V_LOAD_DEBUG}) {
		print STDERR "v2vload: $level: $message\n";
	}
	return;
}

# A getter of the data object, or undef when it has none (or it dies).
sub _get {
	my ($self, $getter) = @_;
	my $data = $self->data;
	return unless $data && $data->can($getter);
	my $value = eval { $data->$getter(0) };
	return $value;
}

sub _int { my $v = shift; return defined $v && $v =~ /^\d+$/ ? $v + 0 : undef }

sub _mac {
	my $v = shift;
	return (defined $v && $v =~ /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i) ? lc $v : undef;
}

=head2 reservation_document

 Parameters  : \%args (optional: domainName, snapshotName, description, imageName)
 Returns     : hash reference
 Description : The reservation document of v2v-load built from VCL's data object.

=cut

sub reservation_document {
	my ($self, $args) = @_;
	my $host = $self->_get('get_vmhost_hostname') // 'localhost';
	my $node = $ENV{V2V_LOAD_VMHOST_NODE} // "ssh://root\@$host:22";
	my $image_os_type = $self->_get('get_image_os_type') // 'linux';
	$image_os_type = 'other' unless $image_os_type =~ /^(linux|windows|unix|osx)$/;
	my %doc = (
		reservation => {
			id        => _int($self->_get('get_reservation_id')) // 0,
			requestId => _int($self->_get('get_request_id')) // 0,
		},
		computer => {
			id        => _int($self->_get('get_computer_id')) // 0,
			shortName => $self->_get('get_computer_short_name'),
			eth0Mac   => _mac($self->_get('get_computer_eth0_mac_address')),
			eth1Mac   => _mac($self->_get('get_computer_eth1_mac_address')),
		},
		image => {
			id         => _int($self->_get('get_image_id')) // 0,
			name       => $self->_get('get_image_name'),
			prettyName => $self->_get('get_image_prettyname') // $self->_get('get_image_name'),
			revision   => _int($self->_get('get_imagerevision_revision')) // 0,
			osType     => $image_os_type,
			minRamMiB  => _int($self->_get('get_image_minram')) // 1024,
			minCpus    => _int($self->_get('get_image_minprocnumber')) || 1,
			diskFormat => 'qcow2',
		},
		vmhost => {
			node           => $node,
			identity       => $ENV{V2V_LOAD_IDENTITY},
			knownHosts     => $ENV{V2V_LOAD_KNOWN_HOSTS},
			libvirtUri     => $ENV{V2V_LOAD_LIBVIRT_URI} // 'qemu:///system',
			datastorePath  => $self->_get('get_vmhost_profile_datastore_path'),
			vmPath         => $self->_get('get_vmhost_profile_vmpath') // $self->_get('get_vmhost_profile_datastore_path'),
			repositoryPath => $self->_get('get_vmhost_profile_repository_path'),
			virtualSwitch0 => $self->_get('get_vmhost_profile_virtualswitch0'),
			virtualSwitch1 => $self->_get('get_vmhost_profile_virtualswitch1'),
			domainType     => $ENV{V2V_LOAD_DOMAIN_TYPE},
		},
		postLoad => {
			timeoutSeconds => ($ENV{V2V_LOAD_READY_TIMEOUT} // 600) + 0,
			wait           => JSON::PP::true,
		},
		args => $args // {},
	);
	my $os_name = $self->_get('get_image_os_name');
	$doc{image}{osName} = $os_name if defined $os_name && $os_name =~ /^[A-Za-z0-9][A-Za-z0-9_.+-]*$/;
	$doc{postLoad}{pattern} = $ENV{V2V_LOAD_READY_PATTERN} if defined $ENV{V2V_LOAD_READY_PATTERN};
	for my $key (keys %{$doc{vmhost}}) {
		delete $doc{vmhost}{$key} unless defined $doc{vmhost}{$key};
	}
	for my $key (qw(eth0Mac eth1Mac)) {
		delete $doc{computer}{$key} unless defined $doc{computer}{$key};
	}
	return \%doc;
}

=head2 run_subroutine

 Parameters  : $subroutine, \%args (optional)
 Returns     : (1, $result) on success, (0, $error) on failure
 Description : Runs `v2v-load vcl $subroutine --data -` with the reservation
               document on its standard input, and decodes its JSON answer.

=cut

sub run_subroutine {
	my ($self, $subroutine, $args) = @_;
	my @cli = split(/\s+/, $ENV{V2V_LOAD_CLI} // 'v2v-load');
	my $document = $JSON->encode($self->reservation_document($args));
	my ($in, $out, $err) = (undef, undef, gensym);
	my $pid = eval { open3($in, $out, $err, @cli, 'vcl', $subroutine, '--data', '-') };
	if (!$pid) {
		my $message = "cannot run @cli: " . ($@ || $!);
		_notify('WARNING', $message);
		$self->{v2vload_error} = {code => 'CLI_NOT_FOUND', message => $message};
		return (0, $self->{v2vload_error});
	}
	print $in $document;
	close $in;
	my $stdout = do { local $/; <$out> } // '';
	my $stderr = do { local $/; <$err> } // '';
	waitpid($pid, 0);
	my $status = $? >> 8;
	my $answer = eval { $JSON->decode((split /\n/, $stdout)[-1] // '') };
	if (!$answer || ref $answer ne 'HASH') {
		my $message = "v2v-load vcl $subroutine exited $status without an answer: $stderr";
		_notify('WARNING', $message);
		$self->{v2vload_error} = {code => 'NO_ANSWER', message => $message};
		return (0, $self->{v2vload_error});
	}
	if (!$answer->{ok}) {
		my $e = $answer->{error} // {};
		_notify('WARNING', "v2v-load vcl $subroutine failed ($e->{code}): $e->{message}");
		$self->{v2vload_error} = $e;
		return (0, $e);
	}
	_notify('DEBUG', "v2v-load vcl $subroutine: ok");
	delete $self->{v2vload_error};
	return (1, $answer->{result});
}

# The last error ({code, message}) of a failed subroutine, or undef.
sub last_error { return $_[0]->{v2vload_error} }

sub _call {
	my ($self, $subroutine, $args) = @_;
	my ($ok, $result) = $self->run_subroutine($subroutine, $args);
	return $ok ? (1, $result) : (0, undef);
}

sub _bool {
	my ($self, $subroutine, $args) = @_;
	my ($ok, $result) = $self->_call($subroutine, $args);
	return ($ok && $result) ? 1 : 0;
}

sub _value {
	my ($self, $subroutine, $args) = @_;
	my ($ok, $result) = $self->_call($subroutine, $args);
	return $ok ? $result : undef;
}

###############################################################################
# Public subroutines (VCL core calls these)

sub initialize {
	my $self = shift;
	my ($ok, $result) = $self->_call('initialize');
	return 0 unless $ok;
	$self->{driver_name} = $result->{driver};
	return 1;
}

sub load { my $self = shift; return $self->_call('load') ? 1 : 0 }

sub capture { my $self = shift; return $self->_call('capture') ? 1 : 0 }

sub node_status {
	my $self = shift;
	my ($ok, $result) = $self->_call('node_status');
	return $ok ? $result->{status} : 'RELOAD';
}

sub does_image_exist {
	my ($self, $image_name) = @_;
	my $r = $self->_value('does_image_exist', $image_name ? {imageName => $image_name} : {});
	return wantarray ? @{$r ? $r->{files} : []} : ($r && $r->{exists} ? 1 : 0);
}

sub get_image_size {
	my ($self, $image_name) = @_;
	return $self->_value('get_image_size', $image_name ? {imageName => $image_name} : {});
}

sub get_image_size_bytes {
	my ($self, $image_name) = @_;
	return $self->_value('get_image_size_bytes', $image_name ? {imageName => $image_name} : {});
}

sub get_image_repository_search_paths {
	my $self = shift;
	my $r = $self->_value('get_image_repository_search_paths');
	return @{$r // []};
}

sub power_status {
	my ($self, $domain_name) = @_;
	return $self->_value('power_status', $domain_name ? {domainName => $domain_name} : {});
}

sub power_on {
	my ($self, $domain_name) = @_;
	return $self->_bool('power_on', $domain_name ? {domainName => $domain_name} : {});
}

sub power_off {
	my ($self, $domain_name) = @_;
	return $self->_bool('power_off', $domain_name ? {domainName => $domain_name} : {});
}

sub power_reset {
	my ($self, $domain_name) = @_;
	return $self->_bool('power_reset', $domain_name ? {domainName => $domain_name} : {});
}

sub post_maintenance_action { my $self = shift; return $self->_call('post_maintenance_action') ? 1 : 0 }

###############################################################################
# libvirt.pm's private helpers

sub get_driver_name {
	my $self = shift;
	return $self->{driver_name} //= $self->_value('get_driver_name');
}

sub get_domain_name                 { return $_[0]->_value('get_domain_name') }
sub get_domain_file_base_name       { return $_[0]->_value('get_domain_file_base_name') }
sub get_domain_xml_directory_path   { return $_[0]->_value('get_domain_xml_directory_path') }
sub get_domain_xml_file_path        { return $_[0]->_value('get_domain_xml_file_path') }
sub get_master_image_directory_path { return $_[0]->_value('get_master_image_directory_path') }
sub get_copy_on_write_file_path     { return $_[0]->_value('get_copy_on_write_file_path') }
sub get_new_image_name              { return $_[0]->_value('get_new_image_name') }
sub generate_domain_xml             { return $_[0]->_value('generate_domain_xml') }
sub get_domain_info                 { return $_[0]->_value('get_domain_info') }

sub get_master_image_file_path {
	my ($self, $image_name) = @_;
	return $self->_value('get_master_image_file_path', $image_name ? {imageName => $image_name} : {});
}

sub delete_existing_domains { my $self = shift; return $self->_call('delete_existing_domains') ? 1 : 0 }

sub delete_domain {
	my ($self, $domain_name) = @_;
	return $self->_call('delete_domain', {domainName => $domain_name}) ? 1 : 0;
}

sub get_domain_xml {
	my ($self, $domain_name) = @_;
	return $self->_value('get_domain_xml', {domainName => $domain_name});
}

sub domain_exists {
	my ($self, $domain_name) = @_;
	return $self->_bool('domain_exists', {domainName => $domain_name});
}

sub get_snapshot_info {
	my ($self, $domain_name) = @_;
	return $self->_value('get_snapshot_info', $domain_name ? {domainName => $domain_name} : {});
}

sub create_snapshot {
	my ($self, $domain_name, $description, $snapshot_name) = @_;
	my %args;
	$args{domainName}   = $domain_name   if $domain_name;
	$args{description}  = $description   if defined $description;
	$args{snapshotName} = $snapshot_name if $snapshot_name;
	return $self->_call('create_snapshot', \%args) ? 1 : 0;
}

sub delete_snapshot {
	my ($self, $domain_name, $snapshot_name) = @_;
	my %args = (snapshotName => $snapshot_name);
	$args{domainName} = $domain_name if $domain_name;
	return $self->_call('delete_snapshot', \%args) ? 1 : 0;
}

sub find_repository_image_file_paths {
	my ($self, $image_name) = @_;
	my $r = $self->_value('find_repository_image_file_paths', $image_name ? {imageName => $image_name} : {});
	return @{$r // []};
}

1;
__END__

=head1 NAME

VCL::Module::Provisioning::v2vload - VCL provisioning module backed by v2v-load

=head1 SYNOPSIS

 use VCL::Module::Provisioning::v2vload;
 my $provisioner = VCL::Module::Provisioning::v2vload->new({data_structure => $self->data});
 $provisioner->initialize() or die;
 $provisioner->load() or die;
 print $provisioner->node_status(), "\n";   # READY

=head1 DESCRIPTION

Every subroutine of VCL's libvirt.pm (and its KVM.pm driver) runs as
C<v2v-load vcl SUBROUTINE --data -> on the management node; v2v-load reaches the
VM host locally or over SSH. See the "VCL" section of v2v-load's README for the
reservation document.

=cut
