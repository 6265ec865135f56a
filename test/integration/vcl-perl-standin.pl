#!/usr/bin/perl
# Drives contrib/vcl/lib/VCL/Module/Provisioning/v2vload.pm as VCL core would, with a
# stand-in for VCL's data object (VCL::DataStructure's getter names, values from a JSON file).
# Usage: perl -I contrib/vcl/lib vcl-perl-standin.pl DATA.json CALL...
#   CALL is SUBROUTINE or SUBROUTINE:ARG1,ARG2; one JSON line per call: {"call","result"}.
use strict;
use warnings;
use JSON::PP;

package StandIn::DataStructure;
our $AUTOLOAD;
sub new { my ($class, $values) = @_; return bless {%$values}, $class }
# Only the getters VCL's DataStructure has (get_<name>), each returning the value given.
my @GETTERS = qw(
	reservation_id request_id computer_id computer_short_name computer_eth0_mac_address
	computer_eth1_mac_address image_id image_name image_prettyname imagerevision_revision
	image_os_type image_os_name image_minram image_minprocnumber vmhost_hostname
	vmhost_profile_datastore_path vmhost_profile_vmpath vmhost_profile_repository_path
	vmhost_profile_virtualswitch0 vmhost_profile_virtualswitch1
);
for my $name (@GETTERS) {
	no strict 'refs';
	*{"StandIn::DataStructure::get_$name"} = sub { return $_[0]->{$name} };
}
sub set { my ($self, $name, $value) = @_; $self->{$name} = $value }

package main;
use VCL::Module::Provisioning::v2vload;

my $json = JSON::PP->new->canonical(1)->allow_nonref(1)->allow_blessed(1)->convert_blessed(1);
my ($data_file, @calls) = @ARGV;
open(my $fh, '<', $data_file) or die "$data_file: $!";
my $values = $json->decode(do { local $/; <$fh> });
my $data = StandIn::DataStructure->new($values);
my $provisioner = VCL::Module::Provisioning::v2vload->new({data_structure => $data});

$| = 1;
for my $call (@calls) {
	my ($sub, $argtext) = split(/:/, $call, 2);
	my @args = defined $argtext ? split(/,/, $argtext) : ();
	if ($sub eq 'set') {    # set:NAME,VALUE changes the data object
		$data->set(@args);
		next;
	}
	my @result = $provisioner->$sub(@args);
	my $result = @result == 1 ? $result[0] : \@result;
	print $json->encode({call => $call, result => $result, error => $provisioner->last_error}), "\n";
}
